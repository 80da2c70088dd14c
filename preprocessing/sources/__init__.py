"""Sources: turn a dataset on disk into rows `(path, label, item, clip)`.

One class per source (`Source`), registered by name (`register`, `get`, `names`): a
`python -m preprocessing NAME ...` sub-command each, and the corpora (`Corpus`) a `python -m
xval init PATH --corpus NAME` too. The built-in ones are a folder per class (`folders`),
file names matched by a regular expression (`regex`), a CSV manifest (`manifest`), and the
corpus formats of speech toolkits in `preprocessing.corpora` (`kaldi`, `lhotse`, `hf`).
Adding one is one module with a `Source` subclass, and its line in `BUILT_IN` below (or
`@register` on the class, in any module imported before the command line runs).

Every source returns `(rows, skipped)` (`preprocessing.sources.base`).
"""

from preprocessing.corpora.hf_datasets import HuggingFace
from preprocessing.corpora.kaldi import Kaldi
from preprocessing.corpora.lhotse_manifests import Lhotse
from preprocessing.sources.base import (
    ITEM_PER_FILE,
    Corpus,
    Option,
    Reads,
    Rows,
    Skipped,
    Source,
    group_recordings,
    source_table,
)
from preprocessing.sources.folders import Folders, folder_source
from preprocessing.sources.manifest import Manifest, manifest_source
from preprocessing.sources.regex import (
    FSDD_PATTERN,
    LABEL_MAPS,
    PRESETS,
    RAVDESS_EMOTIONS,
    RAVDESS_PATTERN,
    SPEAKER_ID_PATTERN,
    Regex,
    label_map,
    regex_source,
)
from preprocessing.sources.registry import SOURCES, corpora, get, names, register

__all__ = ["BUILT_IN", "FSDD_PATTERN", "ITEM_PER_FILE", "LABEL_MAPS", "PRESETS", "RAVDESS_EMOTIONS",
           "RAVDESS_PATTERN", "SOURCES", "SPEAKER_ID_PATTERN", "Corpus", "Option", "Reads",
           "Rows", "Skipped", "Source", "corpora", "folder_source", "get", "group_recordings",
           "label_map", "manifest_source", "names", "regex_source", "register",
           "source_table"]

BUILT_IN = (Regex, Folders, Manifest, Kaldi, Lhotse, HuggingFace)
"""The built-in sources, in the order `--help` lists them."""
for _source in BUILT_IN:
    register(_source)
