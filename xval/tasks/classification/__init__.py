"""Classification, one package: the task and its parts (`task`), its metrics (`metrics`)."""

from xval.tasks.classification.task import Classification

__all__ = ["Classification"]
