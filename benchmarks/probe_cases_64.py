"""The hostile probe's cases of issue 64 ("Reliability (3)"), but the ensemble ones (its
points 1 and 6), and issue 63's GPU ids as the process sees them (`named`, counted apart;
`python -m benchmarks.hostile_probe --only NAME` runs one). Each is a case the issue's probe
found silent or unclear; what each answers now is in docs/reliability.md.

A fake `nvidia-smi` is a script in `{W}/bin`, put first on the case's `PATH`; a transformers
model is a tiny WavLM written with `save_pretrained` (random weights: nothing downloaded),
then made wrong one way.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path
from typing import Any

from benchmarks.probe_cases import (
    DERIVED,
    EXPERIMENT,
    Case,
    Check,
    Prepare,
    _kaldi_dir,
    _write,
    tone,
)

__all__ = ["CASES"]

ITEMS = r"(?P<item>spk\d+)"
COPIES = 300
"""Copies of one recording, each under its own item (point 2: a jingle under every
speaker)."""
SMI = "#!/bin/sh\n" + "".join(f"echo 'GPU {k}: NVIDIA H100 80GB HBM3 (UUID: GPU-{k})'\n"
                              for k in range(4))
"""A fake `nvidia-smi -L` that shows 4 GPUs."""
PATH = {"PATH": f"{{W}}/bin{os.pathsep}{os.environ.get('PATH', '')}"}


def _smi(text: str | bytes) -> Prepare:
    """A fake `nvidia-smi` in `{W}/bin` printing `text`."""
    def prepare(root: Path) -> None:
        path = root / "bin" / "nvidia-smi"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        path.chmod(0o755)
    return prepare


def _copied(rel: str, to: str) -> Prepare:
    """A byte copy of the file `rel` at `to`."""
    return lambda root: shutil.copy(root / rel, root / to) and None


def _jingle(root: Path) -> None:
    """`{W}/jingle/a/spk<i>_0.wav`: one recording copied byte for byte under 300 items, and
    three other sounds in `b/` under the first three of them."""
    first = root / "jingle" / "a" / "spk0_0.wav"
    tone(first, 500.0, seed=1)
    for i in range(1, COPIES):
        shutil.copy(first, first.with_name(f"spk{i}_0.wav"))
    for i in range(3):
        tone(root / "jingle" / "b" / f"spk{i}_1.wav", 1200.0 * (1 + 0.1 * i), seed=20 + i)


def _said(*texts: str) -> Check:
    """Why the output (stdout, white space folded) does not hold every text."""
    def check(root: Path, proc: Any) -> str:
        said = " ".join(proc.stdout.split())
        missing = [t for t in texts if t not in said]
        return f"{missing[0]!r} not in the output" if missing else ""
    return check


def _stderr_has(text: str) -> Check:
    return lambda root, proc: "" if text in proc.stderr else f"{text!r} not on stderr"


class _RunsCode:
    """Pickled, it runs a shell command when an unsafe loader reads it."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (self.command,)


def _model(rel: str, wrong: str) -> Prepare:
    """A tiny WavLM under `rel`, made wrong: `"pickle"` (weights only in a pickle that would
    overwrite `{W}/docs/notes.txt`), `"type"` (`model_type` unknown, `conv_stride` kept),
    `"zero"` (`model.safetensors` a link to /dev/zero) or `"fifo"` (a FIFO)."""
    def prepare(root: Path) -> None:
        import torch  # noqa: PLC0415  (the probe's [pretrained] cases only)
        import transformers  # noqa: PLC0415  (as above)

        transformers.utils.logging.disable_progress_bar()
        folder = root / rel
        torch.manual_seed(0)
        config = transformers.WavLMConfig(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            conv_dim=(8,) * 7, num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2)
        transformers.WavLMModel(config).save_pretrained(folder)
        transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(folder)
        weights = folder / "model.safetensors"
        if wrong == "pickle":
            weights.unlink()
            command = f"echo pwned > {root / 'docs' / 'notes.txt'}"
            (folder / "pytorch_model.bin").write_bytes(
                pickle.dumps({"weight": _RunsCode(command)}))
        elif wrong == "type":
            data = json.loads((folder / "config.json").read_text())
            (folder / "config.json").write_text(json.dumps({**data,
                                                            "model_type": "nosuchmodel"}))
        elif wrong == "zero":
            weights.unlink()
            weights.symlink_to("/dev/zero")
        else:
            weights.unlink()
            os.mkfifo(weights)
    return prepare


FLOATX = EXPERIMENT.format(dataset="demo").replace("\nif __name__", '''
import keras
import architectures


@architectures.register("sets_floatx", reshaping=("none",))
def sets_floatx(input_shape, num_outputs, task_type):
    model = architectures.get("mlp")(input_shape, num_outputs, task_type, hidden_units=8)
    keras.config.set_floatx("float16")  # one job's global: the next job must not see it
    return model


experiment[2] = {"architecture": "sets_floatx", "reshaping_type": "none", "comment_1": "a",
                 "comment_2": "b"}
experiment[3] = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "a",
                 "comment_2": "b", "hidden_units": 8}

if __name__''')
"""Instance 2's builder sets `floatx`; instance 3 trains after it in the same process."""


def _float32_models(rel: str) -> Check:
    """Why the fold models under `rel` are not float32 throughout (their configuration)."""
    def check(root: Path, proc: Any) -> str:
        import zipfile  # noqa: PLC0415

        for path in sorted((root / rel).glob("fold_*.keras")):
            with zipfile.ZipFile(path) as archive:
                if "float16" in archive.read("config.json").decode():
                    return f"{path.name} was built in float16 (the last job's floatx)"
        return ""
    return check


PYTHON_CALL = EXPERIMENT.format(dataset="demo").replace(
    'if __name__ == "__main__":\n    experiment.main()', '''if __name__ == "__main__":
    from xval import Execution  # noqa: F401
    try:  # what a Python caller is told: the exception's message
        experiment.run({call})
    except ValueError as e:
        raise SystemExit(f"error: {e}")''')
"""The probe's experiment, its main block one `Experiment.run` call from Python."""


def _python_call(call: str) -> Prepare:
    return _write("project/experiments/probe.py", PYTHON_CALL.replace("{call}", call))


def _cases() -> list[Case]:
    dry = ("exp", "--dry-run")
    jingle = ("xval", "init", "{W}/jingle", "--item-pattern", ITEMS, "--no-progress",
              "--dry-run")
    hf = ("pre", "folders", "{W}/audio", "--item-pattern", r"(?P<item>spk\d)", "--out", "enc",
          "-q", "--no-progress", "--encoders")
    piped = ("pre", "kaldi", "{W}/kaldi", "--label-file", "utt2lang", "--out", "kd", "-q",
             "--no-progress", "--run-wav-scp-commands")
    labelled = _copied("audio/a/spk1_0.wav", "audio/b/spk3_9.wav")  # under label b
    folders = ("pre", "folders", "{W}/audio", "--item-pattern", r"(?P<item>spk\d)", "--out",
               "s", "--no-progress")
    return [
        # 2. a recording under 300 items
        Case("init-copy-under-300-items", jingle, "run", named=True, prepare=_jingle,
             timeout=400, check=_said(f"{COPIES - 1} pair(s) of files hold the same audio "
                                      f"under two items ({COPIES} items in 1 group(s))")),
        Case("init-copy-under-300-items-merge", (*jingle, "--merge-duplicates"), "refuse",
             named=True, prepare=_jingle, timeout=400,
             says=("--merge-duplicates left 1 item(s)", f"join {COPIES} items into 1 group")),
        # 3. copies of one recording under two labels
        Case("pre-copy-under-two-labels", folders, "run", named=True, prepare=labelled,
             check=_said("Label conflict: 1 pair(s) of these files hold the same audio under "
                         "two labels")),
        Case("pre-copy-under-two-labels-merge", (*folders, "--merge-duplicates"), "refuse",
             named=True, prepare=labelled,
             says=("hold the same audio under two labels", "(label 'a', item spk1)",
                   "(label 'b', item spk3)")),
        # 4. a GPU asked for with the CPU build of torch, a GPU visible
        Case("exp-gpu-with-cpu-torch", ("exp", "--dry-run", "1", "1", "0"), "refuse",
             named=True, prepare=_smi(SMI), env=PATH,
             says=("is a CPU-only build", "install a CUDA build")),
        # 5. a Keras global one job sets
        Case("exp-job-sets-floatx", ("exp", "-q", "2", "3"), "run", named=True,
             prepare=_write("project/experiments/probe.py", FLOATX), timeout=300,
             may_change=DERIVED, check=_float32_models(
                 "project/results/demo/experiment_1/instance_3")),
        # 7. a deprecated keyword against its group; 14. options of a search without one
        Case("run-gpus-against-execution", ("exp",), "refuse", named=True,
             prepare=_python_call('executor=Execution("process", gpus=["0"]), gpus=["1"], '
                                 'dry_run=True'),
             says=("run(gpus=['1']) contradicts executor=Execution(..., gpus=['0'])",)),
        Case("run-trials-without-search", ("exp",), "refuse", named=True,
             prepare=_python_call("trials=3, dry_run=True"),
             says=("run(trials=3) goes with a search", "search=SearchOptions(trials=3)")),
        # 8-10. transformers folders that are wrong
        Case("pre-hf-pickle-weights", (*hf, "hf:{W}/model"), "refuse", named=True,
             prepare=_model("model", "pickle"),
             says=("pytorch_model.bin", "weights_only=True", "model.safetensors")),
        Case("exp-hf-pickle-front-end", (*dry, "--set", "front_end='hf:{W}/model'"), "refuse",
             named=True, prepare=_model("model", "pickle"),
             says=("front_end='hf:", "pytorch_model.bin", "nothing in it ran")),
        Case("pre-hf-unknown-model-type", (*hf, "hf:{W}/model"), "refuse", named=True,
             prepare=_model("model", "type"), says=("model_type 'nosuchmodel'",)),
        Case("pre-hf-weights-dev-zero", (*hf, "hf:{W}/model"), "refuse", named=True,
             prepare=_model("model", "zero"), timeout=120,
             says=("(a link to /dev/zero) is a character device",)),
        Case("pre-hf-weights-fifo", (*hf, "hf:{W}/model"), "refuse", named=True,
             prepare=_model("model", "fifo"), timeout=120,
             says=("model.safetensors is a named pipe (FIFO)",)),
        # 11. an nvidia-smi that prints garbage
        Case("exp-nvidia-smi-garbage", ("exp", "--dry-run", "-v", "1", "1", "0"), "run",
             named=True, prepare=_smi(b"#!/bin/sh\nprintf 'GPU 0: \\377\\376\\n'\n"),
             env=PATH, check=_stderr_has("printed bytes that are not UTF-8; taken for no "
                                         "answer")),
        # 12. a command time limit past what the waits take
        Case("pre-kaldi-timeout-1e9", (*piped, "--command-timeout", "1e9"), "refuse",
             named=True, prepare=_kaldi_dir("kaldi", lambda root, f: f"cat {root}/audio/{f} |"),
             says=("'1e9'", "at most 86400")),
        # 13. a quoted value in config.ini
        Case("config-quoted-data-dir", dry, "refuse", named=True,
             prepare=_write("project/config.ini", '[paths]\ndata_dir = "data" ; quoted\n'
                                                  "results_dir = results\n"),
             says=("the value is in quotes", "write data_dir = data")),
        # issue 63: GPU ids index an inherited CUDA_VISIBLE_DEVICES
        Case("exp-gpu-past-inherited-devices", ("exp", "--dry-run", "1", "1", "2"), "refuse",
             named=True, prepare=_smi(SMI), env={**PATH, "CUDA_VISIBLE_DEVICES": "2,3"},
             says=("this process may use 2 GPU(s)", "CUDA_VISIBLE_DEVICES='2,3' inherited")),
    ]


CASES: list[Case] = _cases()
