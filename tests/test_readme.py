"""The Python snippets of the README are the files they show (issue 43): each ```python
block is preceded by `<!-- file: PATH -->` and stands, line for line, in that file, so the
README cannot drift from the code it quotes. A page of docs/ may mark its snippets the same
way; those marked are checked too."""

import re

import pytest

from tests.conftest import ROOT

MARKED = re.compile(r"(?:<!-- file: (?P<path>\S+) -->\n)?```python\n(?P<code>.*?)```",
                    re.DOTALL)
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def snippets(page):
    """`(path or None, code)` of each ```python block of a Markdown page."""
    return [(m["path"], m["code"]) for m in MARKED.finditer(page.read_text(encoding="utf-8"))]


def test_every_readme_snippet_names_its_file():
    found = snippets(ROOT / "README.md")
    assert found, "the README shows no Python snippet"
    unmarked = [code.splitlines()[0] for path, code in found if path is None]
    assert not unmarked, f"README snippets without <!-- file: PATH -->: {unmarked}"


@pytest.mark.parametrize("page,path,code", [
    (page.relative_to(ROOT).as_posix(), path, code)
    for page in PAGES for path, code in snippets(page) if path is not None])
def test_snippet_stands_in_its_file(page, path, code):
    shown = ROOT / path
    assert shown.is_file(), f"{page} shows {path}, which does not exist"
    assert code in shown.read_text(encoding="utf-8"), (
        f"{page}'s snippet of {path} is not in that file: copy the file's lines into "
        "the page again")


def test_a_snippet_that_drifted_is_caught(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("<!-- file: experiments/exp1.py -->\n```python\nfrom xval import "
                    "Experiment\n\nexperiment = Experiment(number=99)\n```\n")
    [(path, code)] = snippets(page)
    assert path == "experiments/exp1.py"
    assert code not in (ROOT / path).read_text(encoding="utf-8")


# -- the README as a front door --------------------------------------------------------------

README = ROOT / "README.md"
MEASURE = re.compile(r"\d+(?:[.,]\d+)*\s*(?:s|ms|min|h|%|MB|GB|MiB|GiB|x)\b|\d\s*±\s*\d"
                     r"|\b\d+\.\d+\b")
"""A figure: a number with a unit, a mean ± std, a decimal (a score, a time, a size)."""


def section(text, title):
    """The `## ` section of `text` whose heading starts with `title`, heading included."""
    found = re.search(rf"^## {re.escape(title)}.*?(?=^## |\Z)", text, re.M | re.S)
    assert found, f"no section {title!r}"
    return found.group(0)


def prose(text):
    """`text` without its fenced blocks, inline code and link targets."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return re.sub(r"\]\([^)]*\)", "]", re.sub(r"`[^`]*`", "", text))


def test_readme_is_short_and_its_quickstart_shorter():
    text = README.read_text(encoding="utf-8")
    assert len(text.split()) <= 1200
    assert len(section(text, "Quickstart").split()) <= 300


def test_readme_opens_with_what_the_tool_is_and_the_two_commands():
    text = README.read_text(encoding="utf-8")
    first = text.split("\n\n")[1]  # the paragraph under the title
    assert "cross-validated" in first and "Keras 3" in first and "workbook" in first
    commands = text.split("```bash\n", 1)[1].split("```", 1)[0]
    assert commands.startswith("make run ") and "\nmake test " in commands


def test_readme_quotes_no_figure_outside_generated_output():
    """Timings, scores and sizes go stale: the README quotes none in its prose, and its one
    sample output is the quickstart's, which `tests/test_quickstart.py` checks line by line
    against a real run of `init` (the block is marked `<!-- output: tests/test_quickstart.py
    -->`)."""
    text = README.read_text(encoding="utf-8")
    assert MEASURE.findall(prose(text).replace("3.11", "")) == []
    samples = re.findall(r"(<!-- output: (\S+) -->\n)?```text\n", text)
    assert samples and all(marker == "tests/test_quickstart.py" for _, marker in samples)


def test_a_figure_in_the_prose_is_caught():
    page = "The demo took 3 min 19 s and scored 1.000 ± 0.000 (`make run`, 2 cores).\n"
    assert MEASURE.findall(prose(page)) == ["3 min", "19 s", "1.000", "0.000"]


def test_readme_links_every_guide_page():
    """The table of what the tool does sends a reader to each step of the guide, predict and
    export included (one click from the quickstart)."""
    text = README.read_text(encoding="utf-8")
    for page in ("preprocessing", "experiments", "workbook", "prediction", "export",
                 "scaling-out", "reference/parameters"):
        assert f"(docs/{page}.md" in text, page
    assert "docs/prediction.md" in section(text, "Quickstart")
