"""Command lines: `python -m xval`, `python -m preprocessing`, `python -m augmentation`."""
