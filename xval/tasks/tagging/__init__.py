"""Tagging, one package: the task, its parts and its fusion rule (`task`), the label sets a
store keeps (`labels`), the metrics (`metrics`), and what its Labels sheet and per-label
figure show (`views`)."""

from xval.tasks.tagging.labels import TAG_SEPARATOR, check_label_sets, join_tags, split_tags
from xval.tasks.tagging.task import Tagging

__all__ = ["TAG_SEPARATOR", "Tagging", "check_label_sets", "join_tags", "split_tags"]
