"""MkDocs hooks: the parameter reference is generated from the typed records at build time.

`docs/reference/parameters.md` holds the marker `<!-- schema-tables -->`; this hook replaces
it with one table per section of `xval.config.schema.SCHEMA` (key, expected values, default,
help and notes; `SECTION_NOTES` under a section's heading). The schema is derived from the
fields of the section records (`xval.config.sections.SECTIONS`), where each key is declared
once (`xval.core.settings.setting`), so the reference is never copied by hand and cannot
drift from the code.
"""

from __future__ import annotations

import importlib
from typing import Any

from mkdocs.exceptions import PluginError

MARKER = "<!-- schema-tables -->"
PAGE = "reference/parameters.md"

# Registries in higher layers bind the choices of some keys when they are imported
# (`schema.bind_choices`): import them so the tables list the registered names.
_BINDING_MODULES = ("xval.executors.registry", "preprocessing.features")


def _cell(text: str) -> str:
    """Text made safe for one Markdown table cell (`<dataset>` stays text, not a tag)."""
    text = " ".join(str(text).split())
    for raw, safe in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|"),
                      ("*", "\\*")):
        text = text.replace(raw, safe)
    return text


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


def schema_tables() -> str:
    """The Markdown tables of every section of the schema, in the schema's order.

    Returns:
        The Markdown text: a `## [section]` heading per section, its notes, and a table
        with a row per key.
    """
    for name in _BINDING_MODULES:
        importlib.import_module(name)
    schema = importlib.import_module("xval.config.schema")
    parts = []
    for section, keys in schema.SCHEMA.items():
        parts.append(f"## [{section}]\n")
        notes = getattr(schema, "SECTION_NOTES", {}).get(section)
        if notes:
            parts.append(_cell(notes) + "\n")
        parts.append("| key | expected | default | help | notes |")
        parts.append("|---|---|---|---|---|")
        for key, spec in keys.items():
            parts.append(_row(key, spec))
        parts.append("")
    return "\n".join(parts)


def _row(key: str, spec: Any) -> str:
    """One table row: key, `Key.expected()`, the default as config.ini writes it, help,
    notes."""
    default = _code(spec.text(spec.default).replace("|", "\\|"))
    return (f"| `{key}` | {_cell(spec.expected())} | {default} "
            f"| {_cell(spec.help)} | {_cell(spec.note())} |")


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """Replaces the marker in the parameter reference with the generated tables.

    Raises:
        PluginError: when the parameter reference has lost its marker.
    """
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise PluginError(f"{PAGE} has no {MARKER} marker: the schema tables go there.")
    return markdown.replace(MARKER, schema_tables())
