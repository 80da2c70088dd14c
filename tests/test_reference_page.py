"""The parameter reference in the repository is the schema's (`docs/reference/parameters.md`,
written by `python -m xval config --reference`)."""

import subprocess
import sys

from tests.conftest import ROOT


def page_problems(text):
    """What keeps `text` from being the schema's parameter reference."""
    from xval.cli.reference import PAGE, parameter_reference
    from xval.config.schema import SCHEMA

    problems = [] if text == parameter_reference() else [
        f"{PAGE} differs from the schema: python -m xval config --reference > {PAGE}"]
    for section, keys in SCHEMA.items():  # every key has its row, under its section
        block = text.split(f"## [{section}]\n", 1)[-1].split("\n## [", 1)[0]
        problems += [f"[{section}] {key} has no row" for key in keys
                     if f"| `{key}` |" not in block]
    return problems


def test_parameter_reference_on_disk_is_the_schemas():
    """Compared with a fresh process's page: this session may have registered a task of
    an experiment folder (with parameters of its own) that the library's page leaves out."""
    from xval.cli.reference import PAGE

    proc = subprocess.run([sys.executable, "-m", "xval", "config", "--reference"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert (ROOT / PAGE).read_text(encoding="utf-8") == proc.stdout, (
        f"{PAGE} differs from the schema: python -m xval config --reference > {PAGE}")


def test_a_page_that_drifted_is_caught():
    from xval.cli.reference import parameter_reference

    page = parameter_reference().replace("| `n_mels` |", "| `n_mel` |")
    assert page_problems(page)[1:] == ["[features] n_mels has no row"]


def test_reference_command_prints_the_page():
    proc = subprocess.run([sys.executable, "-m", "xval", "config", "--reference"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (ROOT / "docs" / "reference" / "parameters.md").read_text()
