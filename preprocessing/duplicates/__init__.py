"""Files that hold the same audio under two names, found by content and kept out of
two folds: exact copies, other codecs and bit depths, other sample rates, trims of up to a
third, gain changes, noise added at 20 dB SNR or more.

The stages of the method, each in its module:

- `fingerprints`: each file's fingerprint (its waveform at 8 kHz and its spectral
  landmarks), the candidate pairs and their verification on the waveforms;
- `candidates`: the inverted index of landmarks that finds the candidates without a loop
  over all pairs, built in parts on disk;
- `spool`: fingerprints kept on disk as they come, in bounded memory;
- `check`: the check of a dataset's files (the record kept in `dataset.json` under
  `duplicates`), the pairs that cross items and their merge;
- `store_check`: the check of a built store (`python -m preprocessing check STORE`);
- `folds`: what a run sees of it: the dry run's line, the refusal of
  `[data] duplicates = error` and what the experiment's `dataset.json` records.

Measured on FSDD and RAVDESS by `benchmarks/duplicates.py` (docs/results.md); the method and
its limits are in docs/preprocessing.md. This module imports nothing: a worker that computes
fingerprints imports `fingerprints` alone, without the pandas of `check`.
"""
