"""Regression, one package: the task and its parts (`task`), its metrics (`metrics`)."""

from xval.tasks.regression.task import Regression

__all__ = ["Regression"]
