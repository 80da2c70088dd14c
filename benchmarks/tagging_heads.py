"""Tagging that sees mixtures (issue 75, point 3): the encoder head's pooling over a row's
blocks and label-union mixing, through the engine, against `init`'s tagging head.

`scenes` writes a synthesized environmental multi-label set, offline: clips of `--seconds`
seconds, each a mixture of 1 to 3 sources of 9 classes (the 6 textures of
`preprocessing.ambience` and the 3 event classes of `preprocessing.synth_scenes`, an event a
train of its calls at a random place), each source scaled to a peak of 1, the first at 0 dB
and the others 0 to 10 dB down, the sum scaled to a peak of 0.9 (the mixtures of issue 75's
held-out set). An item is a recording session: its clips' textures are cut, at random
places, from one recording of each texture made for the item, so a fold that tests an item
never trained on its recordings; the events are drawn afresh for every clip.

    OUT/<item>/<item>_<k>.wav   mono PCM at 16 kHz
    OUT/manifest.csv            path,label,item,clip,sources
    OUT/recipe.json             the parameters

`run` cross-validates the eight arms on one store (each arm an instance, the same folds):
`init`'s tagging head (`xval.config.recipes.REFIT_HEAD`: mean and max of a row's blocks, an
MLP of 256, refit on training + validation items; mixup at the package default), the same
head over the blocks' maximum (`pooling="max"`), with per-label attention over the blocks
(`pooling="label_attention"`), and the recipes' attention head (attentive statistics
pooling, refit), each as it is and with label-union mixing (`union_mix`, which replaces
mixup). Read the table with `python -m xval compare
results/<store>/experiment_<N> --metric map` (the corrected resampled t-test).

    python -m benchmarks.tagging_heads scenes --out data/raw/scene_tags
    python -m preprocessing manifest data/raw/scene_tags/manifest.csv --item-column item \\
        --clip-column clip --label-separator ';' --encoders aisfx --segment-seconds 5 \\
        --segment-hop-seconds 2.5 --out scene_tags_aisfx
    OMP_NUM_THREADS=1 python -m benchmarks.tagging_heads run scene_tags_aisfx --number 15 \
        --folds 5 --repeats 3
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from preprocessing.ambience import TYPES, ambience
from preprocessing.synth_scenes import EVENTS
from xval import Experiment
from xval.config.recipes import HEADS as RECIPE_HEADS
from xval.config.recipes import REFIT_HEAD

SR = 16000
CLASSES = (*TYPES, *EVENTS)
TEXTURE_SECONDS = 20.0
"""The length of the recording of each texture made for an item, its clips cut from it."""
HEADS = {"mean+max (today)": {}, "max": {"pooling": "max"},
         "label attention": {"pooling": "label_attention"},
         "attentive statistics": RECIPE_HEADS["attention"]}
MIXING = {"mixup (today)": {}, "label union": {"union_mix": 0.5}}


def _event(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """A train of calls of the event class `kind` at a random place in `n` samples."""
    make, (fewest, most), gaps = EVENTS[kind]
    parts: list[np.ndarray] = []
    for k in range(int(rng.integers(fewest, most + 1))):
        if k:
            parts.append(np.zeros(int(rng.uniform(*gaps) * SR)))
        parts.append(make(rng, SR))
    train = np.concatenate(parts)[:n]
    out = np.zeros(n)
    start = int(rng.integers(0, n - len(train) + 1))
    out[start:start + len(train)] = train
    return out


def scenes(out: Path, items: int, clips: int, seconds: float, seed: int) -> None:
    """Writes the set (see the module)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    rows = []
    for i in range(items):
        item = f"session{i:02d}"
        (out / item).mkdir(parents=True, exist_ok=True)
        recordings: dict[str, np.ndarray] = {}
        for k in range(clips):
            kinds = rng.choice(len(CLASSES), size=int(rng.integers(1, 4)), replace=False)
            mix = np.zeros(n)
            for order, index in enumerate(kinds):
                kind = CLASSES[int(index)]
                if kind in TYPES:
                    if kind not in recordings:
                        recordings[kind] = ambience(kind, int(TEXTURE_SECONDS * SR), rng=rng,
                                                    sample_rate=SR)
                    start = int(rng.integers(0, len(recordings[kind]) - n + 1))
                    source = recordings[kind][start:start + n]
                else:
                    source = _event(kind, n, rng)
                gain = 1.0 if order == 0 else 10 ** (-rng.uniform(0, 10) / 20)
                mix += gain * source / max(np.abs(source).max(), 1e-9)
            name = f"{item}/{item}_{k:02d}.wav"
            sf.write(out / name, (0.9 * mix / np.abs(mix).max()).astype(np.float32), SR,
                     subtype="PCM_16")
            labels = sorted(CLASSES[int(j)] for j in kinds)
            rows.append({"path": name, "label": ";".join(labels), "item": item,
                         "clip": name, "sources": len(labels)})
    pd.DataFrame(rows).to_csv(out / "manifest.csv", index=False)
    (out / "recipe.json").write_text(json.dumps(
        {"items": items, "clips_per_item": clips, "seconds": seconds, "seed": seed,
         "sample_rate": SR, "classes": list(CLASSES), "sources": [1, 3],
         "gain_db_after_first": [-10, 0], "texture_seconds": TEXTURE_SECONDS}, indent=2) + "\n")
    counts = pd.Series([t for r in rows for t in r["label"].split(";")]).value_counts()
    print(f"Wrote {len(rows)} clips of {seconds:g} s ({items} items, "
          f"{np.mean([r['sources'] for r in rows]):.2f} sources per clip) to {out}; clips "
          f"per label {counts.min()}-{counts.max()}.")


def experiment(store: str, number: int, folds: int, repeats: int = 1) -> Experiment:
    """The arms (`HEADS` x `MIXING`) on the store `store`, instance 1 `init`'s head."""
    exp = Experiment(description=f"Tagging heads and label-union mixing on {store} "
                                 "(issue 75.3)", dataset=store, number=number,
                     num_folds=folds, num_repeats=repeats, task_type="tagging")
    arms = [(head, mixing) for mixing in MIXING for head in HEADS]
    for k, (head, mixing) in enumerate(arms, start=1):
        exp[k] = {**REFIT_HEAD, **HEADS[head], **MIXING[mixing], "comment_1": head,
                  "comment_2": mixing}
    return exp


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("scenes", help="write the synthesized environmental multi-label set")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--items", type=int, default=30, help="recording sessions (default: 30)")
    s.add_argument("--clips", type=int, default=10, help="clips per item (default: 10)")
    s.add_argument("--seconds", type=float, default=5.0, help="clip length (default: 5)")
    s.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("run", help="cross-validate the arms on an embedding store")
    r.add_argument("store", help="a tagging store of embeddings (a dataset name)")
    r.add_argument("--number", type=int, default=14, help="the experiment number")
    r.add_argument("--folds", type=int, default=5)
    r.add_argument("--repeats", type=int, default=1, help="repeats of the k-fold (default: 1)")
    r.add_argument("--config", help="config.ini (default: found as experiments find it)")
    args = parser.parse_args(argv)
    if args.command == "scenes":
        scenes(args.out, args.items, args.clips, args.seconds, args.seed)
        return
    outcome = experiment(args.store, args.number, args.folds, args.repeats).run(
        config=args.config)
    raise SystemExit(outcome.exit_code)


if __name__ == "__main__":
    main()
