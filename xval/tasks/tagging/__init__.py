"""Tagging, one package: the task, its parts and its fusion rule (`task`), the label sets a
store keeps (`labels`), the metrics (`metrics`), what its Labels sheet and per-label figure
show (`views`), its data checks (`checks`), label-union mixing (`mixing`) and its own
parameters (`params`). The sources of `preprocessing` use this face (the label sets' text)."""

from xval.tasks.tagging.labels import TAG_SEPARATOR, check_label_sets, join_tags, split_tags
from xval.tasks.tagging.params import TaggingParams
from xval.tasks.tagging.task import Tagging

__all__ = ["TAG_SEPARATOR", "Tagging", "TaggingParams", "check_label_sets", "join_tags",
           "split_tags"]
