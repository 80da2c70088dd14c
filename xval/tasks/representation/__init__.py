"""Representation learning, one package: the task and its parts (`task`)."""

from xval.tasks.representation.task import Representation

__all__ = ["Representation"]
