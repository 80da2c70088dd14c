"""The training layer: one fold (prepare, fit, evaluate, package), model assembly and
loading, embedding classifiers. Imports Keras where used: set the backend first."""

from xval.compat import deprecated_names  # noqa: E402

__getattr__ = deprecated_names(__name__)  # the names of the module this package replaced
