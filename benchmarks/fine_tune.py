"""Frozen vs fine-tuned aisfx vs a CNN from scratch, through the engine (issue 42, point 6).

Five instances on one 44.1 kHz waveform store, the same items and folds, the package's
training defaults (SpecAugment, mixup, label smoothing, cosine schedule) for all:

1. **frozen**: `front_end="aisfx"`, the encoder's layers frozen, `init`'s MLP head;
2. **k=1**: the same with `encoder_trainable_blocks=1` (its last block trains at
   `learning_rate * encoder_lr_scale`);
3. **k=2**: the last two blocks;
4. **k=2, mixed precision**: as 3 under `mixed_precision` (float16 compute on a GPU);
5. **CNN from scratch**: `audio_cnn` on the in-model log-mel front end (`front_end="mel"`).

Build the store, then run on a GPU (the process executor, `--jobs-per-gpu` folds at once):

    python -m preprocessing manifest envset/manifest.csv --item-column item \\
        --clip-column clip --out envset_wave --feature waveform --sample-rate 44100 \\
        --segment-seconds 4.05 --segment-hop-seconds 2.025
    python -m benchmarks.fine_tune run envset_wave --number 1 --folds 5 --gpus 0 \\
        --jobs-per-gpu 4
    python -m benchmarks.fine_tune report results/envset_wave/experiment_1

`report` prints each instance's test clip accuracy (mean ± std, per fold), the corrected
resampled t-test (Nadeau and Bengio) of each against instance 1 over the folds both
finished, and the training throughput: training rows per second of fit (the median over
folds of rows x epochs run / fit seconds, validation included) and the epochs run. It reads
whatever folds have finished, so a run cut short still reports.
"""

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.encoders import _instance_folds, _summary, _versus
from xval import Execution

ARMS: dict[int, tuple[str, dict[str, object]]] = {
    1: ("frozen", {"front_end": "aisfx"}),
    2: ("k=1", {"front_end": "aisfx", "encoder_trainable_blocks": 1}),
    3: ("k=2", {"front_end": "aisfx", "encoder_trainable_blocks": 2}),
    4: ("k=2, mixed precision", {"front_end": "aisfx", "encoder_trainable_blocks": 2,
                                 "mixed_precision": True}),
    5: ("CNN from scratch", {"architecture": "audio_cnn", "reshaping_type": "conv",
                             "front_end": "mel"}),
}


def experiment(store: str, number: int, folds: int, epochs: int, arms: Sequence[int]):
    """The experiment of the arms `arms` on the waveform store `store`."""
    from xval import Experiment
    from xval.config.recipes import MLP_HEAD

    exp = Experiment(description=f"Frozen vs fine-tuned aisfx vs CNN on {store}",
                     dataset=store, number=number, num_folds=folds,
                     task_type="classification",
                     parameters={"epochs": epochs, "patience": max(3, epochs // 4)})
    for k in arms:
        name, params = ARMS[k]
        head = {} if "architecture" in params else dict(MLP_HEAD)
        exp[k] = {**head, **params, "comment_1": name, "comment_2": ""}
    return exp


def throughput(instance: Path) -> tuple[float, float]:
    """Median training rows per second of fit, and median epochs run, over finished folds."""
    rates, epochs = [], []
    for path in sorted(instance.glob("fold_*.json")):
        fold = json.loads(path.read_text())
        if fold.get("status") != "ok" or not fold.get("timings", {}).get("fit_seconds"):
            continue
        rates.append(fold["n_rows"]["train"] * fold["epochs_run"]
                     / fold["timings"]["fit_seconds"])
        epochs.append(fold["epochs_run"])
    return (float(np.median(rates)) if rates else float("nan"),
            float(np.median(epochs)) if epochs else float("nan"))


def report(folder: Path, metric: str = "accuracy") -> list[str]:
    """One line per instance of `folder`: scores, t-test against instance 1, throughput."""
    lines = []
    base: dict[str, float] = {}
    # The test/train ratio of the experiment's k folds (1 / (k - 1)), also for an arm that
    # finished fewer of them.
    num_folds = json.loads((folder / "folds.json").read_text())["num_folds"]
    for k, (name, _) in ARMS.items():
        instance = folder / f"instance_{k}"
        if not instance.is_dir():
            continue
        folds = _instance_folds(instance, metric)
        if k == 1:
            base = folds
        rate, epochs = throughput(instance)
        line = (f"{k}. {name}: {_summary(list(folds.values())) if folds else 'no fold'} "
                f"[{' '.join(f'{v:.3f}' for v in folds.values())}]; "
                f"{rate:.0f} training rows/s, {epochs:.0f} epochs")
        versus = _versus(folds, base, num_folds) if k > 1 else None
        if versus:
            line += f"; vs 1 over {versus[2]} folds: {versus[0]:+.3f} (p = {versus[1]:.3f})"
        lines.append(line)
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    """`run` trains the arms (and prints the report); `report` prints a run's scores."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("run", help="train the arms")
    p.add_argument("store", help="a 44.1 kHz waveform store under config.ini's data_dir")
    p.add_argument("--number", type=int, default=1, help="experiment number")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--arms", default="1,2,3,4,5", help="instances to run (see the module)")
    p.add_argument("--gpus", default="", help="GPU ids, e.g. 0 (none: the CPU, inline)")
    p.add_argument("--jobs-per-gpu", type=int, default=4)
    p = sub.add_parser("report", help="print the scores of a run's results folder")
    p.add_argument("folder", type=Path)
    p.add_argument("--metric", default="accuracy", choices=("accuracy", "uar"))
    args = parser.parse_args(argv)
    if args.what == "report":
        print("\n".join(report(args.folder, args.metric)))
        return
    from xval.config.loader import find_config, load_config
    from xval.core.errors import XvalError

    config = load_config(find_config())
    arms = [a.strip() for a in args.arms.split(",")]
    if not arms or any(a not in map(str, ARMS) for a in arms):
        parser.error(f"--arms {args.arms!r}: expected instance numbers among "
                     f"{', '.join(map(str, ARMS))}, comma-separated, e.g. --arms 1,2,3")
    arms = [int(a) for a in arms]
    exp = experiment(args.store, args.number, args.folds, args.epochs, arms)
    folder = config.results_dir / args.store / f"experiment_{args.number}"
    try:
        if args.gpus:
            config = config.replace(backend={"jobs_per_gpu": args.jobs_per_gpu})
            code = exp.run(config=config, executor=Execution("process", gpus=args.gpus.split(","))).exit_code
        else:
            code = exp.run(config=config, executor="inline").exit_code
    except KeyboardInterrupt:  # a time limit (timeout -s INT): report the finished folds
        code = 130
    except XvalError as error:  # refused before training: one line
        raise SystemExit(f"benchmarks.fine_tune: {error}") from None
    print("\n".join(report(folder)))
    raise SystemExit(code)


if __name__ == "__main__":
    main()
