"""The installed version, for `--version` on every command line."""

from __future__ import annotations

import argparse
import importlib.metadata
import platform

DISTRIBUTION = "audio-xval"


def version() -> str:
    """The version of the installed distribution, or `"unknown"` when it is not installed
    (a checkout used without `pip install -e .`)."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def version_line() -> str:
    """`audio-xval 0.1.0 (Python 3.11.7)`: what `--version` prints."""
    return f"{DISTRIBUTION} {version()} (Python {platform.python_version()})"


def add_version(parser: argparse.ArgumentParser) -> None:
    """Adds `--version` (prints `version_line()` and exits 0) to `parser`.

    Args:
        parser: a top-level parser or a subcommand's parser.
    """
    parser.add_argument("--version", action="version", version=version_line())
