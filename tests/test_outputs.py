"""The output rule (`xval.core.outputs`): no command replaces a file it was not asked to
write, and a folder it writes into is a writable folder. Each case runs the real command
line in a subprocess and checks the exit code, the one `error:` line and that nothing
existing changed."""

import os

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import ROOT, python_here
from xval.core.errors import ConfigurationError
from xval.core.outputs import check_output_files, check_output_folder

SR = 8000


def _run(*args, cwd=ROOT):
    """`python ARGS`, run in this process (`python_here`): the refusals are the commands'
    own; each command line's process is tested in its own test file."""
    return python_here(*args, cwd=cwd)


@pytest.fixture
def audio(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    sf.write(folder / "a.wav", 0.1 * rng.normal(size=SR // 2).astype(np.float32), SR)
    return folder


def _one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


# (existing files, --out, the path the error names): embed refuses before the model opens
EMBED_CASES = [
    (["feat.csv"], "feat.npy", "feat.csv"),  # the sibling the user never named
    (["feat.npy"], "feat.npy", "feat.npy"),
    (["labels.csv"], "labels.csv", "labels.csv"),  # --out labels.csv writes labels.npy+.csv
    (["feat.npy"], "feat", "feat.npy"),
]


@pytest.mark.parametrize(("existing", "out", "named"), EMBED_CASES)
def test_embed_never_replaces_a_file_it_was_not_asked_to(tmp_path, audio, existing, out,
                                                         named):
    for name in existing:
        (tmp_path / name).write_text("precious\n")
    proc = _run("-m", "xval", "embed", tmp_path / "no_model.keras", audio / "a.wav",
                "--out", tmp_path / out)
    _one_line_error(proc, str(tmp_path / named), "--overwrite")
    for name in existing:
        assert (tmp_path / name).read_text() == "precious\n"


@pytest.mark.parametrize("out", ["", " ", "/"])
def test_embed_out_without_a_file_name(tmp_path, audio, out):
    proc = _run("-m", "xval", "embed", tmp_path / "no_model.keras", audio / "a.wav",
                "--out", out)
    _one_line_error(proc, "expected a file name")


@pytest.mark.parametrize("kind", ["file", "fifo", "folder", "dangling"])
def test_output_that_is_not_a_plain_file_is_refused_even_with_overwrite(tmp_path, kind):
    path = tmp_path / "x.npy"
    if kind == "file":
        path.write_text("")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    else:
        path.symlink_to(tmp_path / "nowhere")
    if kind == "file":
        assert check_output_files([path], overwrite=True) == [path]
        with pytest.raises(ConfigurationError, match="exists; pass --overwrite"):
            check_output_files([path], overwrite=False)
    else:
        with pytest.raises(ConfigurationError, match="not a plain file"):
            check_output_files([path], overwrite=True)


@pytest.mark.parametrize("kind", ["file", "file_parent", "fifo", "dangling", "empty"])
def test_output_folder_must_be_a_folder(tmp_path, kind):
    target = tmp_path / "out"
    if kind == "file":
        target.write_text("")
    elif kind == "file_parent":
        (tmp_path / "f").write_text("")
        target = tmp_path / "f" / "out"
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "dangling":
        target.symlink_to(tmp_path / "nowhere")
    with pytest.raises(ConfigurationError, match="not a folder|dangling|empty"):
        check_output_folder("" if kind == "empty" else target, what="OUT")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder(tmp_path):
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(ConfigurationError, match="cannot write"):
            check_output_folder(tmp_path / "out", what="OUT")
    finally:
        tmp_path.chmod(0o755)


@pytest.mark.parametrize("case", ["existing_output", "out_is_a_file"])
def test_augmentation_out_rule(tmp_path, audio, case):
    out = tmp_path / "out"
    if case == "existing_output":
        out.mkdir()
        (out / "a_original.wav").write_text("precious\n")
        needle = "a_original.wav"
    else:
        out.write_text("precious\n")
        needle = "is a file, not a folder"
    proc = _run("-m", "augmentation", audio, out, "0", "--no-progress", "--workers", "1")
    _one_line_error(proc, needle)
    assert "precious" in (out / "a_original.wav" if out.is_dir() else out).read_text()
    if case == "existing_output":
        again = _run("-m", "augmentation", audio, out, "0", "--no-progress", "--workers", "1",
                     "--overwrite")
        assert again.returncode == 0, again.stderr
        assert sf.info(out / "a_original.wav").frames == SR // 2


def test_detect_plot_refuses_existing_plot(tmp_path, audio):
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "a_activity.png").write_text("precious\n")
    proc = _run("-m", "xval", "detect", tmp_path / "no_model.keras", audio / "a.wav",
                "--plot", plots)
    _one_line_error(proc, "a_activity.png", "--overwrite")
    assert (plots / "a_activity.png").read_text() == "precious\n"


@pytest.mark.parametrize("samples", [np.full(SR // 2, np.nan, np.float32),
                                     np.full(SR // 2, np.inf, np.float32)])
def test_augmentation_of_nothing_usable_is_an_error(tmp_path, samples):
    folder = tmp_path / "in"
    folder.mkdir()
    sf.write(folder / "bad.wav", samples, SR, subtype="FLOAT")
    proc = _run("-m", "augmentation", folder, tmp_path / "out", "1", "--no-progress",
                "--workers", "1")
    _one_line_error(proc, "every file was skipped", "bad.wav")


def test_store_report_plot_never_replaces_a_file_it_was_not_asked_to(tmp_path):
    """`python -m preprocessing report --plot` named an existing file: replaced silently
    (found by probing); now it is the file rule: an error without --overwrite."""
    from tests.conftest import tiny_store

    store = tiny_store(tmp_path / "data")
    mine = tmp_path / "figure.png"
    mine.write_bytes(b"the user's own figure")
    proc = _run("-m", "preprocessing", "report", store.path, "--plot", mine)
    _one_line_error(proc, "figure.png", "--overwrite")
    assert mine.read_bytes() == b"the user's own figure"
    proc = _run("-m", "preprocessing", "report", store.path, "--plot", tmp_path / "notes.txt")
    _one_line_error(proc, "expected a .png file name")
