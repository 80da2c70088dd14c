"""The experiment scripts `init` writes carry no code from data: every value taken from the
data (a label, a class folder's or the audio folder's name, how the files were found, an
encoder's name or `hf:` path, its licence, a detection annotation's label) is a literal
that reads back equal, and the docstring and comments hold none of them. Hostile strings
in every field: the script compiles, its literals equal the data, and reading it (as the
dry run does) runs nothing hidden in them."""

import ast
import io
import os
import tokenize
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from preprocessing.store import FeatureStore, write_store
from tests.conftest import tiny_store, write_config
from xval.cli.scripts import experiment_script, literal, load_experiment
from xval.config.loader import load_config

MARK = "PWNED"
"""What every payload would write: a file of this name (and a suffix) in the current folder."""

HOSTILE = [
    f'zero"""+str(open("{MARK}_1","w"))+"""',
    f"zero'''+str(open('{MARK}_2','w'))+'''",
    f'end\\"""+str(open("{MARK}_3","w"))+"""\\',
    f"line\nbreak\r\n\"\"\"+str(open('{MARK}_4','w'))#",
    "back\\slash \\N{BULLET} \\x00 \\u1234 \\",
    "# a comment, then \"",
    "%(x)s %(HOME)s 100% {number} {0}",
    "nul\x00byte",
    "lone \udcff \ud800 surrogates",
    "right-to-left \u202e\u200f\u2066 marks\u2069",
    "emoji \U0001F600 and \u4e2d\u6587, \u00e9",
    "x" * 1000,
    ('"""' + "y" * 997)[:1000],
]
"""Hostile strings: triple quotes of both kinds, backslashes, line breaks, `#`,
configparser's `%(x)s`, str.format fields, NUL, lone surrogates, right-to-left marks,
characters outside the BMP, 1,000-character names."""


def _literals(tree):
    """Module-level `NAME = literal`, the `Experiment(...)` keywords and each
    `experiment[k] = {...}`, evaluated as literals."""
    names, keywords, instances = {}, {}, {}
    for node in tree.body:
        if not isinstance(node, ast.Assign):
            continue
        target = node.targets[0]
        if isinstance(target, ast.Name) and isinstance(node.value, ast.Call):
            keywords = {k.arg: ast.literal_eval(k.value) for k in node.value.keywords}
        elif isinstance(target, ast.Name):
            names[target.id] = ast.literal_eval(node.value)
        elif isinstance(target, ast.Subscript) and isinstance(node.value, ast.Dict):
            instances[ast.literal_eval(target.slice)] = ast.literal_eval(node.value)
    return names, keywords, instances


def _prose(text):
    """The docstring and every comment of a script."""
    comments = [t.string for t in tokenize.generate_tokens(io.StringIO(text).readline)
                if t.type == tokenize.COMMENT]
    return [ast.get_docstring(ast.parse(text), clean=False), *comments]


def _check(script, tmp_path):
    """Compiles, holds no payload in its prose, and runs none when read (`load_experiment`,
    as the dry run reads it) in `tmp_path`. Returns the literals (`_literals`)."""
    text = script.read_text(encoding="utf-8")
    tree = ast.parse(text)
    compile(text, str(script), "exec")
    assert not any(MARK in part for part in _prose(text))
    here = Path.cwd()
    os.chdir(tmp_path)
    try:
        load_experiment(script)
    finally:
        os.chdir(here)
    assert not list(tmp_path.glob(f"{MARK}*"))
    return _literals(tree)


def _encoder_store(data_dir, name, encoder, licence):
    """A tiny store recorded as `encoder`'s embeddings (`front_end`)."""
    store = tiny_store(data_dir, name, n_items=4, clips_per_class=1, segments=1)
    info = {"front_end": {"encoder": encoder, "licence": licence}}
    return FeatureStore(write_store(store.path, store.features[:], store.meta,
                                    info=info, overwrite=True).path)


@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
def test_init_script_holds_hostile_data_only_as_literals(hostile, tmp_path):
    """Each field of `init`'s script that comes from the data holds `hostile`: the labels,
    the audio folder, the data's name (`--name` or the folder's), how the files were found
    (a manifest's path, a pattern), two encoders' names (`hf:` paths) and their licences."""
    from xval.cli.init import _write_script

    config = load_config(write_config(tmp_path))
    store = tiny_store(config.data_dir, "plain", n_items=4, clips_per_class=1, segments=1)
    encoder = f"hf:/models/{hostile}"
    embedded = [_encoder_store(config.data_dir, "plain_hf", encoder, hostile),
                _encoder_store(config.data_dir, "plain_aisfx", hostile, "CC BY 4.0"),
                _encoder_store(config.data_dir, "plain_both", "", "")]
    rows = pd.DataFrame({"label": [hostile, "b", "c", hostile], "item": ["1", "2", "3", "4"]},
                        dtype=object)  # pyarrow strings hold no lone surrogate
    audio = tmp_path / f"audio {hostile}".replace("\x00", "")[:200]
    how = f"manifest {hostile}, items: {hostile}"
    script = tmp_path / "experiments" / "plain.py"
    _write_script(script, store, rows, 2, how, (audio, hostile), config, tmp_path, embedded)
    names, keywords, instances = _check(script, tmp_path)
    assert names == {"AUDIO": str(audio), "FOUND": how, "CLASSES": sorted({hostile, "b", "c"}),
                     "ENCODERS": {encoder: hostile, hostile: "CC BY 4.0"}}
    assert keywords == {"description": f"{hostile}: first models", "dataset": "plain",
                        "number": 1, "num_folds": 2, "task_type": "classification",
                        "preference": [5, 3, 1, 2, 4]}  # declared before any score
    assert [instances[k].get("dataset") for k in (1, 2, 3, 4)] == \
        ["plain_hf", "plain_aisfx", "plain_both", None]  # 4: the CNN, on `dataset`
    assert all(c.isascii() and '"' not in c for k in (1, 2, 3)
               for c in instances[k]["comment_1"])  # `store_tag`: letters, digits, _ and +


@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
def test_detection_script_holds_hostile_data_only_as_literals(hostile, tmp_path):
    """A detection `init`'s script: the annotations' labels, the audio folder, the data's
    name and the frame encoder's name and licence hold `hostile`."""
    from xval.cli.init_detection import _write_script

    write_config(tmp_path)
    store = _encoder_store(tmp_path / "data", "scenes", hostile, hostile)
    audio = tmp_path / hostile.replace("\x00", "")[:200]
    summary = {"recordings": 4, "events": 9, "classes": [hostile, "rain"]}
    script = tmp_path / "experiments" / "scenes.py"
    _write_script(script, store, audio, summary, 2, hostile)
    names, keywords, instances = _check(script, tmp_path)
    assert names == {"AUDIO": str(audio), "CLASSES": [hostile, "rain"],
                     "ENCODERS": {hostile: hostile}}
    assert keywords["description"] == f"{hostile}: detection"
    assert instances[1]["comment_2"] == hostile


@pytest.mark.parametrize("value", [*HOSTILE, 0, -1.5, True, None, [], [HOSTILE[0], 2.0],
                                   {HOSTILE[1]: (HOSTILE[2],)}, ("one",)])
def test_literal_reads_back_equal(value):
    text = literal(value)
    assert ast.literal_eval(text) == value and "\n" not in text
    assert text.isascii() or not any(c in text for c in "\x00\n\r\u202e\u200f\udcff")


def test_literal_refuses_what_has_no_literal():
    for value in (float("nan"), object(), {1, 2}):
        with pytest.raises(TypeError, match="has no literal"):
            literal(value)


def test_a_docstring_that_would_not_read_back_is_never_written():
    """The guard behind the rule: prose holding three quotes (a value of the data put in
    the docstring by mistake) is refused, not written."""
    from xval.core.errors import XvalError

    with pytest.raises(XvalError, match="would not read back as written"):
        experiment_script(question='a """ b', summary="", about="",
                          script=Path("experiments/x.py"), results="results/x",
                          data={}, settings={"description": "x"}, instances="")


def test_docstring_paths_are_shown_only_when_plain():
    text = experiment_script(question="q?", summary="s", about="a",
                             script=Path("experiments/x.py"),
                             results='/r"""/x', data={"AUDIO": "a"},
                             settings={"description": "d"}, instances="")
    assert "python -m xval report RESULTS_FOLDER" in text
    assert "python experiments/x.py --dry-run" in text
    compile(text, "x.py", "exec")


# --- end to end: `init` on hostile data, then the script's dry run ---------------------------

NAMES = [f'zero"""+str(open("{MARK}_cls","w"))+"""',
         f"one'''+str(open('{MARK}_c2','w'))+'''",
         "two\\\nline #%(x)s \u202e\u200f" + "w" * 200]
"""Hostile names a filesystem takes (no NUL, no `/`, under 255 bytes) for class folders."""
FOLDER = f"sounds'''+str(open('{MARK}_dir','w'))+'''\"\"\"+str(open(\"{MARK}_d2\",\"w\"))#"
FILE = f'x"""+str(open("{MARK}_file","w"))+"""\\'


def _speakers(audio, classes, speakers=4, seconds=0.3, rate=8000):
    """`audio/<class>/spk<k>_<FILE>_<c>.wav`: a tone per class and speaker (no two files
    alike, so no duplicate is reported)."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    for c, label in enumerate(classes):
        (audio / label).mkdir(parents=True)
        for k in range(speakers):
            y = 0.3 * np.sin(2 * np.pi * (400 + 500 * c + 37 * k) * t)
            y += 0.01 * rng.standard_normal(len(t))
            sf.write(audio / label / f"spk{k}_{FILE}_{c}.wav", y.astype(np.float32), rate)
    return audio


def _no_mark(*folders):
    return [p for folder in folders for p in Path(folder).rglob(f"{MARK}*")]


@pytest.mark.slow
def test_init_on_hostile_folder_class_and_file_names_runs_nothing(tmp_path):
    """The probe's case, as a user runs it (a real `python -m xval init`): class folders,
    the audio folder and the files named with code after three quotes. Init writes its
    script, its dry run passes, and neither it nor the script's own dry run writes a
    marker."""
    import subprocess
    import sys

    from tests.conftest import ROOT, run_script_here

    audio = _speakers(tmp_path / FOLDER, NAMES)
    project = tmp_path / "project"
    project.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "xval", "init", str(audio), "--item-pattern",
         r"(?P<item>spk\d)", "--encoders", "none", "--no-progress", "--project", str(project)],
        capture_output=True, text=True, cwd=project, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "torch"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    script = next((project / "experiments").glob("*.py"))
    names, keywords, _ = _check(script, project)
    assert names["AUDIO"] == str(audio) and names["CLASSES"] == sorted(NAMES)
    assert keywords["description"] == f"{FOLDER.split('.')[0]}: first models"
    dry = run_script_here(script, "--dry-run", cwd=project)
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    assert _no_mark(tmp_path) == []


def test_init_on_a_hostile_manifest_runs_nothing(tmp_path):
    """A manifest whose labels, items and an extra column hold every hostile string a UTF-8
    CSV can (lone surrogates cannot be written to one), under a hostile file name."""
    from tests.conftest import run_here, run_script_here
    from xval.cli.main import main

    labels = [h for h in HOSTILE if "\udcff" not in h]
    audio = _speakers(tmp_path / "sounds", [f"c{c}" for c in range(len(labels))],
                      speakers=2, seconds=0.2)
    files = sorted(p.relative_to(audio).as_posix() for p in audio.rglob("*.wav"))
    manifest = audio / f"{FILE}.csv"
    pd.DataFrame({"path": files,
                  "label": [labels[int(f.split("/")[0][1:])] for f in files],
                  "item": [f"{labels[k % len(labels)]} {k % 2}" for k in range(len(files))],
                  HOSTILE[0]: HOSTILE[1]}).to_csv(manifest, index=False)
    project = tmp_path / "project"
    done = run_here(main, "init", audio, "--manifest", manifest, "--encoders", "none",
                    "--no-progress", "--folds", "2", "--project", project, cwd=project.parent)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    script = project / "experiments" / "sounds.py"
    names, _, _ = _check(script, tmp_path)
    assert names["CLASSES"] == sorted(labels) and manifest.name in names["FOUND"]
    assert run_script_here(script, "--dry-run", cwd=tmp_path).returncode == 0
    assert _no_mark(tmp_path) == []


def test_init_on_hostile_annotation_labels_runs_nothing(scenes, tmp_path):
    """A detection init whose annotation CSV labels its events with hostile strings."""
    from tests.conftest import run_here
    from xval.cli.main import main

    events = pd.read_csv(scenes / "events.csv")
    kinds = sorted(events["label"].unique())
    hostile = {kind: HOSTILE[k] for k, kind in enumerate(kinds)}
    table = pd.DataFrame({"file": events["file"], "start": events["start_sample"],
                          "end": events["end_sample"],
                          "label": events["label"].map(hostile)})
    table.to_csv(tmp_path / "events.csv", index=False)
    project = tmp_path / "project"
    done = run_here(main, "init", scenes, "--annotations", tmp_path / "events.csv",
                    "--items", scenes / "items.csv", "--no-progress", "--project", project,
                    cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    names, _, _ = _check(project / "experiments" / "scenes.py", tmp_path)
    assert names["CLASSES"] == sorted(hostile.values())
    assert _no_mark(tmp_path) == []
