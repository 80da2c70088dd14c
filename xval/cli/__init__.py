"""Command lines: `python -m xval`, `python -m preprocessing`, `python -m augmentation`."""

from xval.compat import deprecated_names  # noqa: E402

__getattr__ = deprecated_names(__name__)  # the names of the module this package replaced
