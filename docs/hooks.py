"""MkDocs hooks: the build refuses a parameter reference that is not the schema's.

`docs/reference/parameters.md` is generated (`python -m xval config --reference`, from the
typed records where each key is declared once) and kept in the repository, so that it reads
the same on GitHub as on the site; `tests/test_reference_page.py` compares it with the
schema, and so does this hook at build time.
"""

from __future__ import annotations

import importlib
from typing import Any

from mkdocs.exceptions import PluginError

PAGE = "reference/parameters.md"


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """Refuses a parameter reference that differs from the one the schema gives.

    Raises:
        PluginError: naming the command that writes the page again.
    """
    if page.file.src_uri != PAGE:
        return markdown
    reference = importlib.import_module("xval.cli.reference")
    if markdown.strip() != reference.parameter_reference().strip():
        raise PluginError(f"docs/{PAGE} is not the schema's: write it again with "
                          f"`python -m xval config --reference > docs/{PAGE}`.")
    return markdown
