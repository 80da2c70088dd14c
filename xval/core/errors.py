"""The project's exceptions: one root, one subclass per kind of failure."""


class XvalError(Exception):
    """Root of every error raised by this project on purpose."""


class ConfigurationError(XvalError, ValueError):
    """A bad value in `config.ini`, an experiment script or the command line."""


class ParameterError(ConfigurationError):
    """A bad instance parameter: unknown name, wrong type, not a literal."""


class DatasetError(XvalError, ValueError):
    """A dataset or feature store that cannot be read or used as asked."""


class TrainingError(XvalError, RuntimeError):
    """A failure while training or evaluating one fold."""


class ResultsConflictError(XvalError):
    """Existing results disagree with what a run asks for (e.g. changed parameters)."""


class StorageError(XvalError, OSError):
    """A file that cannot be written: a full disk, a read-only or forbidden folder. Also an
    `OSError`, so that code handling file-system failures handles it too."""
