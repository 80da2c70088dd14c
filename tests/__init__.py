"""The project's test suite. A regular package (not a namespace one), so that a `tests`
package some dependency installs into site-packages (dcase_util, pulled by sed_eval, ships
one) cannot shadow it and break `from tests.conftest import ...`."""
