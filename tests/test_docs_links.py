"""Every internal link of the README and the docs leads somewhere: the file exists and, when
the link names an anchor (`workbook.md#ensembles-of-instances`), the page has that heading.

Anchors are made as the site makes them (Python-Markdown's `toc`, which MkDocs uses): the
heading's text without its Markdown, lower case, characters other than letters, digits,
`_`, `-` and spaces dropped, spaces as `-`; a repeated heading gets `_1`, `_2`; an
`{#id}` after a heading is its anchor. `mkdocs build --strict` checks the site's links too
(`make docs`); this test holds them without building the site.
"""

import re
import unicodedata
from pathlib import Path

import pytest

from tests.conftest import ROOT

PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
_LINK = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_INLINE_CODE = re.compile(r"`[^`\n]*`")


def slugify(text):
    """Python-Markdown's `toc.slugify` of a heading's text."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _plain(heading):
    """A heading's text as the page shows it: links by their text, code without ticks,
    emphasis without its marks, HTML entities as their characters."""
    heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    heading = heading.replace("`", "")
    heading = re.sub(r"(\*\*|__|\*)(.+?)\1", r"\2", heading)
    return heading.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def anchors(page):
    """The anchors of `page`'s headings (outside its code blocks)."""
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    found, seen = set(), {}
    for _, heading in _HEADING.findall(text):
        custom = re.search(r"\{\s*#([\w-]+)[^}]*\}\s*$", heading)
        slug = custom.group(1) if custom else slugify(_plain(re.sub(r"\{[^}]*\}\s*$", "",
                                                                   heading)))
        if slug in seen:
            seen[slug] += 1
            slug = f"{slug}_{seen[slug]}"
        else:
            seen[slug] = 0
        found.add(slug)
    return found


def links(page):
    """`(line, target)` of each link of `page` outside code (blocks and spans)."""
    text = page.read_text(encoding="utf-8")
    text = _FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    text = _INLINE_CODE.sub(lambda m: " " * len(m.group(0)), text)
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in _LINK.finditer(text)]


def link_problems(page):
    """Every internal link of `page` whose file or anchor is missing, as `page:line: what`."""
    problems = []
    where = page.relative_to(ROOT) if page.is_relative_to(ROOT) else page.name
    for line, target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            problems.append(f"{where}:{line}: {target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            problems.append(f"{where}:{line}: {target}: {Path(path or page.name).name} has no "
                            f"heading #{anchor}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_internal_links_and_anchors_lead_somewhere(page):
    assert link_problems(page) == []


def test_anchors_are_made_as_the_site_makes_them(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n## `python -m xval report`\n\n## Which score selects, and why\n"
                    "\n### Its own environment: the packages `preprocessing`, `architectures`\n"
                    "\n## Ensembles of instances\n\n## Ensembles of instances\n\n"
                    "## Odd one {#custom}\n\n```text\n# not a heading\n```\n")
    assert anchors(page) == {"title", "python-m-xval-report", "which-score-selects-and-why",
                             "its-own-environment-the-packages-preprocessing-architectures",
                             "ensembles-of-instances", "ensembles-of-instances_1", "custom"}


def test_a_broken_link_or_anchor_is_caught(tmp_path):
    (tmp_path / "other.md").write_text("# Other\n\n## Section two\n")
    page = tmp_path / "page.md"
    page.write_text("[fine](other.md#section-two), [no page](gone.md), "
                    "[no heading](other.md#section-three), [here](#nowhere), "
                    "`[in code](gone.md)`, [web](https://example.org/x#y)\n")
    assert [p.split(": ", 1)[1] for p in link_problems(page)] == [
        "gone.md: no such file", "other.md#section-three: other.md has no heading "
        "#section-three", "#nowhere: page.md has no heading #nowhere"]
