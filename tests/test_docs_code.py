"""The Python blocks of the guide run as they are written, so that they cannot rot.

Each ```python block of a page of docs/ is one of:

- executed here, the page's blocks in order in one namespace (as a reader pastes them into
  one session), after the page's context below (`CONTEXT`: the variables its prose says
  exist, such as an `experiment` or the arrays `X, y, speakers`), in a fresh project folder
  with a config.ini and a small store `demo`;
- a file the page quotes (`<!-- file: PATH -->` before it: `tests/test_readme.py` checks it
  stands in that file), run here too;
- a recipe another test takes from the page and runs end to end (`RECIPES`);
- marked `<!-- not run: REASON -->` before it, for a block that needs what a test cannot have
  here (a pretrained encoder's weights, a trained experiment's folder).

A block of none of these kinds fails the test: a new block is run or says why not.
"""

import re

import numpy as np
import pytest

from tests.conftest import ROOT, write_config

BLOCK = re.compile(r"(?:<!-- (?P<mark>file|not run): ?(?P<why>[^\n]*?) -->\n)?"
                   r"```python\n(?P<code>.*?)```", re.DOTALL)
RECIPES = {"# experiments/exp_topk.py": "tests/test_task_recipe.py",
           "# experiments/exp_own.py": "tests/test_own_model_recipe.py"}
"""A block's first line -> the test that runs it end to end."""

_EXPERIMENT = ("from xval import Experiment\n"
               "experiment = Experiment(description='docs', dataset='demo', number=1)\n")
_INSTANCE = "experiment[1] = {'architecture': 'example_cnn', 'reshaping_type': 'conv'}\n"
CONTEXT = {
    "experiments.md": ("import numpy as np\nrng = np.random.default_rng(0)\n"
                       "X = rng.normal(size=(60, 4))\ny = np.arange(60) % 2\n"
                       "speakers = np.repeat(np.arange(10), 6)\n"),
    "search.md": _EXPERIMENT,
    "tasks.md": _EXPERIMENT + _INSTANCE,
    "export.md": _EXPERIMENT,
    "training.md": _EXPERIMENT,
    "pretrained.md": _EXPERIMENT,
    "comparing.md": "from xval import Experiment\n",
    "preprocessing.md": ("import numpy as np\nrng = np.random.default_rng(0)\n"
                         "predictors = {f's{i}': rng.normal(size=(3, 5, 4)).astype('float32') "
                         "for i in range(4)}\n"
                         "targets = {f's{i}': np.array([0, 1, 0]) for i in range(4)}\n"),
}
"""Page -> what its prose says exists before its first block."""

PAGES = sorted(p for p in (ROOT / "docs").glob("*.md"))


def blocks(page):
    """`(kind, code)` of each Python block of `page`: `run`, `file`, `recipe`, `not run`."""
    found = []
    for m in BLOCK.finditer(page.read_text(encoding="utf-8")):
        first = m["code"].splitlines()[0] if m["code"] else ""
        kind = m["mark"] or ("recipe" if first in RECIPES else "run")
        if m["mark"] == "not run":
            assert m["why"].strip(), f"{page.name}: a block marked not run says why"
        found.append((kind, m["code"]))
    return found


def _toy_store(path):
    """A store of 3 classes over 6 items (`tests/test_task_recipe.py`'s)."""
    from tests.test_task_recipe import toy_store

    return toy_store(path, "classification")


@pytest.mark.parametrize("page", [p for p in PAGES if any(k == "run" for k, _ in blocks(p))],
                         ids=lambda p: p.name)
def test_guide_python_blocks_run(page, tmp_path, monkeypatch):
    from xval import tasks

    write_config(tmp_path)
    _toy_store(tmp_path / "data" / "demo")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "docs"}  # not "__main__": a script's `main()` does not run
    registered = set(tasks.names())
    exec(compile(CONTEXT.get(page.name, ""), f"<context of {page.name}>", "exec"), namespace)  # noqa: S102
    try:
        for n, (kind, code) in enumerate(blocks(page), start=1):
            if kind in ("run", "file"):  # a quoted file's lines run as the file's do
                exec(compile(code, f"<{page.name} block {n}>", "exec"), namespace)  # noqa: S102
    finally:
        for name in set(tasks.names()) - registered:  # a task a page defines
            tasks.TASKS.unregister(name)


def test_every_block_is_run_or_says_why():
    kinds = {kind for page in PAGES for kind, _ in blocks(page)}
    assert kinds <= {"run", "file", "recipe", "not run"}
    for first, test in RECIPES.items():  # each recipe's test takes its block by that path
        assert first.split()[1] in (ROOT / test).read_text(encoding="utf-8"), test


def test_a_block_that_rotted_fails(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```python\nfrom xval import NoSuchName\n```\n")
    [(kind, code)] = blocks(page)
    assert kind == "run"
    with pytest.raises(ImportError):
        exec(compile(code, "<page>", "exec"), {})  # noqa: S102


def test_the_sklearn_block_uses_the_three_set_view():
    """The experiments page's scikit-learn block really splits (not only imports)."""
    from xval import ItemKFold

    X, y = np.zeros((60, 2)), np.arange(60) % 2
    speakers = np.repeat(np.arange(10), 6)
    sets = list(ItemKFold(5).split_train_val_test(X, y, groups=speakers))
    assert len(sets) == 5
    for train, val, test in sets:
        assert not set(speakers[train]) & set(speakers[test])
        assert not set(speakers[val]) & set(speakers[test])
