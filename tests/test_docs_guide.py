"""The docs are a guide: its pages in the order a user needs them, history and measurements
kept to the changelog and the measured pages, and the way in (README, home, installation,
quickstart, concepts) free of figures that go stale."""

import re

from tests.conftest import ROOT
from tests.test_readme import MEASURE, prose

HISTORY_PAGES = {"CHANGELOG.md", "docs/results.md"}
"""Where history may be told ("issue N")."""
ISSUE = re.compile(r"\bissues? \d+", re.IGNORECASE)
GUIDE_ORDER = ["installation.md", "quickstart.md", "preprocessing.md", "experiments.md",
               "workbook.md", "prediction.md", "export.md", "scaling-out.md",
               "reference/parameters.md"]
"""Install, a first result, your own data, the experiment script, the workbook, using the
model, scaling out, reference."""
WAY_IN = ["README.md", "docs/index.md", "docs/installation.md", "docs/quickstart.md",
          "docs/concepts.md"]


def _pages():
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _nav():
    """The pages of mkdocs.yml's `nav`, in its order."""
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8").split("\nnav:\n", 1)[1]
    return re.findall(r":\s+(\S+\.md)\s*$", text, re.M)


def test_no_issue_references_outside_the_history():
    found = [f"{page.relative_to(ROOT)}:{n}" for page in _pages()
             if str(page.relative_to(ROOT)) not in HISTORY_PAGES
             for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
             if ISSUE.search(line)]
    assert found == []


def test_the_site_reads_in_the_order_a_user_needs():
    nav = _nav()
    assert nav[0] == "index.md"
    assert [nav.index(page) for page in GUIDE_ORDER] == sorted(nav.index(p) for p in GUIDE_ORDER)
    docs = sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md"))
    assert sorted(nav) == docs  # every page in the nav once


def test_the_way_in_quotes_no_figure():
    """Timings, scores and sizes live on the measured pages (results, performance)."""
    found = {page: MEASURE.findall(prose((ROOT / page).read_text(encoding="utf-8"))
                                   .replace("3.11", "")) for page in WAY_IN}
    assert {page: figures for page, figures in found.items() if figures} == {}


def test_the_quickstart_leads_to_using_the_model_in_one_click():
    for page in ("README.md", "docs/quickstart.md"):
        text = (ROOT / page).read_text(encoding="utf-8")
        assert re.search(r"\]\((?:docs/)?prediction\.md\)", text), page
    quickstart = (ROOT / "docs" / "quickstart.md").read_text(encoding="utf-8")
    assert "(export.md)" in quickstart.split("## Next", 1)[1]
