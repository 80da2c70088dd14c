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
