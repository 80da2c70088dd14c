"""Corpora of speech toolkits as source rows: Kaldi data directories, Lhotse manifests and
Hugging Face `datasets` folders.

Each returns `(rows, skipped)` like the sources of `preprocessing.sources`, so a store is
built from them by `preprocessing.build_store` with the same checks, skipped-file report and
clip ids. Kaldi needs no library (its files are text); Lhotse and `datasets` are extras
(the `[lhotse]` and `[hf]` extras), imported when their source is used.
"""

import preprocessing.sources  # noqa: F401  (first: it imports this package's sources, in its order)
from preprocessing.corpora.hf_datasets import hf_source
from preprocessing.corpora.kaldi import kaldi_source
from preprocessing.corpora.lhotse_manifests import lhotse_source

__all__ = ["hf_source", "kaldi_source", "lhotse_source"]
