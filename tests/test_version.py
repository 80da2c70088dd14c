"""`--version` on every command line (issue 26, item 6) and the `xval` console script."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from xval.core.version import version_line


def _parsers():
    from xval.cli.augment import parser as augment_parser
    from xval.cli.main import build_parser
    from xval.cli.preprocess import parser as preprocess_parser
    from xval.running.command import experiment_parser
    from xval.running.declaration import ExperimentDeclaration

    declaration = ExperimentDeclaration(description="d", dataset="tiny", number=1)
    return {"xval": (build_parser(), []),
            **{f"xval {c}": (build_parser(), [c])
               for c in ("report", "predict", "detect", "evaluate", "embed", "config", "init")},
            "preprocessing": (preprocess_parser(), []),
            "augmentation": (augment_parser(), []),
            "experiment script": (experiment_parser(declaration), [])}


def test_version_on_every_command(capsys):
    for name, (parser, words) in _parsers().items():
        with pytest.raises(SystemExit) as stop:
            parser.parse_args([*words, "--version"])
        assert stop.value.code == 0, name
        assert capsys.readouterr().out.strip() == version_line(), name
    assert version_line().startswith("audio-xval ")


def test_version_in_a_subprocess():
    proc = subprocess.run([sys.executable, "-m", "xval", "--version"], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == version_line()


def test_console_script_is_python_m_xval():
    script = Path(sys.executable).with_name("xval")
    if not script.exists():  # the package is not installed in this environment
        pytest.skip("the xval console script is installed by `pip install -e .`")
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    for command in ("report", "predict", "detect", "evaluate", "embed", "config", "init"):
        assert command in proc.stdout
    assert "rebuild an experiment's workbook" in proc.stdout  # each command says what it does
