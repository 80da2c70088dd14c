"""The handlers of `python -m xval predict | detect | embed | evaluate`."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xval import tasks
from xval.cli.annotations import READING, reading_options
from xval.core.errors import ConfigurationError, DatasetError
from xval.core.files import atomic_write_bytes, atomic_write_text
from xval.core.outputs import check_output_files, check_output_folder
from xval.ensembles.predict import install_predict
from xval.inference.detect import detect_files
from xval.inference.embed import embed_files
from xval.inference.evaluate import (
    evaluate_recordings,
    evaluate_rows,
    format_csv,
    format_text,
    model_task_name,
    source_rows,
)
from xval.inference.predict import predict_files
from xval.report.activity import activity_plot


def main_predict(args: argparse.Namespace) -> int:
    install_predict()  # the ensembles sit above the layers that show and predict them
    results = predict_files(args.model, args.audio, fold=getattr(args, "fold", None),
                            ensemble=getattr(args, "ensemble", False),
                            dataset_info=getattr(args, "dataset_info", None),
                            embedding_classifier=getattr(args, "embedding_classifier", False))
    described = Path(args.model).is_dir()
    if args.format == "csv":
        if described:  # a comment line: pandas reads it with `comment="#"`
            print(f"# {_one_line(results[0]['model'])}")
        names = list(results[0]["clip"]["scores"])
        rows = [["file", "level", "start", "predicted", *names]]
        for r in results:
            for s in r["segments"]:
                best = s.get("predicted", max(s["scores"], key=s["scores"].get)
                             if len(names) > 1 else "")
                rows.append([r["file"], "segment", f"{s['start']:.3f}", str(best)]
                            + [f"{s['scores'][n]:.6f}" for n in names])
            rows.append([r["file"], "clip", "", str(r["clip"]["predicted"])]
                        + [f"{r['clip']['scores'][n]:.6f}" for n in names])
        print(csv_text(rows), end="")
        return 0
    print(results[0]["model"])
    for r in results:
        scores = r["clip"]["scores"]
        top = sorted(scores.items(), key=lambda kv: -kv[1])
        print(f"{r['file']}: {r['clip']['predicted']}  (clip: "
              + ", ".join(f"{k} {v:.3f}" for k, v in top[:5]) + ")")
        for s in r["segments"]:
            seg = sorted(s["scores"].items(), key=lambda kv: -kv[1])
            print(f"  segment at {s['start']:.2f}s: "
                  + ", ".join(f"{k} {v:.3f}" for k, v in seg[:5]))
    return 0


def csv_text(rows: list[list[Any]]) -> str:
    """Rows as CSV text through the `csv` module: a comma, quote or line break in a file
    name is quoted, never a broken row."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _one_line(text: str) -> str:
    """`text` for a `#` comment line: its line breaks shown as spaces."""
    return " ".join(str(text).splitlines())


def embed_outputs(out: str, *, overwrite: bool) -> tuple[Path, Path]:
    """The two files `embed --out` writes (`.npy` rows, `.csv` index), checked by the output
    rule (`xval.core.outputs`) before the model is opened."""
    if not out.strip() or not Path(out).name:
        raise ConfigurationError(f"--out {out!r}: expected a file name such as emb.npy.")
    given = Path(out)
    if given.is_symlink() or (given.exists() and not given.is_file()):
        raise ConfigurationError(
            f"--out {out!r} exists and is not a plain file (a folder, FIFO, device or link); "
            "give a file name such as emb.npy.")
    npy = Path(out)
    if npy.suffix != ".npy":
        npy = npy.with_suffix(".npy")
    csv = npy.with_suffix(".csv")
    check_output_files([npy, csv], overwrite=overwrite)
    return npy, csv


def main_embed(args: argparse.Namespace) -> int:
    out, csv = embed_outputs(args.out, overwrite=getattr(args, "overwrite", False))
    embeddings, index = embed_files(args.model, args.audio, args.layer,
                                    fold=getattr(args, "fold", None),
                                    dataset_info=getattr(args, "dataset_info", None))
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.save(buffer, embeddings.astype(np.float32))
    atomic_write_bytes(out, buffer.getvalue())
    atomic_write_text(csv, pd.DataFrame(index).to_csv(index=False))
    print(f"Wrote {out} ({embeddings.shape[0]} x {embeddings.shape[1]}) and "
          f"{out.with_suffix('.csv')}")
    return 0


def _plot_paths(folder: str, audio: list[str]) -> list[Path]:
    """The activity plots `detect --plot` writes, one per audio file."""
    return [Path(folder) / f"{Path(a).stem}_activity.png" for a in audio]


def main_detect(args: argparse.Namespace) -> int:
    if args.plot:
        check_output_folder(args.plot, what="--plot")
        check_output_files(_plot_paths(args.plot, args.audio),
                           overwrite=getattr(args, "overwrite", False))
        try:
            Path(args.plot).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigurationError(f"--plot {args.plot!r}: cannot create the folder ({e}); "
                                     "give a folder you can write.") from e
    results = detect_files(args.model, args.audio, fold=getattr(args, "fold", None),
                           ensemble=getattr(args, "ensemble", False),
                           dataset_info=getattr(args, "dataset_info", None))
    if args.format == "csv":
        print(csv_text([["file", "onset_s", "offset_s", "label"]]
                       + [[r["file"], f"{onset:.3f}", f"{offset:.3f}", label]
                          for r in results for onset, offset, label in r["events"]]),
              end="")
    else:
        print(results[0]["model"])
        for r in results:
            print(f"{r['file']}: {len(r['events'])} event(s)")
            for onset, offset, label in r["events"]:
                print(f"  {onset:8.3f} {offset:8.3f}  {label}")
    if args.plot:
        for r in results:
            activity_plot(r, _plot_paths(args.plot, [r["file"]])[0])
        if args.format != "csv":
            print(f"Activity plots in {args.plot}")
    return 0


def _evaluate_recordings(args: argparse.Namespace) -> dict[str, Any]:
    """`evaluate --annotations`: a detector scored on the annotated recordings of SOURCE."""
    given = [f"--{name.replace('_', '-')}" for name in
             ("source", "pattern", "label_map", "clip_column", "root")
             if getattr(args, name, None) is not None]
    if given:
        raise ConfigurationError(f"{', '.join(given)} cannot be used with --annotations "
                                 "(SOURCE is the folder of the annotated recordings).")
    if len(args.sources) != 1 or not Path(args.sources[0]).is_dir():
        raise DatasetError(f"With --annotations, SOURCE is one folder of recordings (got "
                           f"{' '.join(args.sources)}).")
    return evaluate_recordings(args.model, args.annotations, args.sources[0], fold=args.fold,
                               ensemble=args.ensemble, dataset_info=args.dataset_info,
                               **reading_options(args))


def main_evaluate(args: argparse.Namespace) -> int:
    if getattr(args, "annotations", None):
        report = _evaluate_recordings(args)
        print(format_csv(report) if args.format == "csv" else format_text(report), end=""
              if args.format == "csv" else "\n")
        return 0
    task = tasks.get(model_task_name(args.model, fold=args.fold, ensemble=args.ensemble,
                                     dataset_info=args.dataset_info))
    try:  # refuses a task whose models labelled files do not score
        task.targets.of_files([], [])
    except ConfigurationError as e:
        raise ConfigurationError(f"{args.model} is a {task.name} model. {e}") from None
    annotation_only = [f"--{name.replace('_', '-')}" for name in READING
                       if name != "label_column" and getattr(args, name, None) is not None]
    if annotation_only:
        raise ConfigurationError(f"{', '.join(annotation_only)} go with --annotations "
                                 "(the annotated recordings of a model that finds events).")
    source = args.source
    if source is None:
        source = "regex" if args.pattern is not None else "folders"
    for path in args.sources:
        if not Path(path).exists():
            raise DatasetError(f"Source {path!r} does not exist.")
    rows, skipped = source_rows(args.sources, source=source, pattern=args.pattern,
                                label_map=args.label_map, path_column=args.path_column,
                                label_column=args.label_column,
                                clip_column=args.clip_column,
                                root=args.root)
    report = evaluate_rows(args.model, rows, fold=args.fold, ensemble=args.ensemble,
                           dataset_info=args.dataset_info, skipped=skipped)
    print(format_csv(report) if args.format == "csv" else format_text(report), end=""
          if args.format == "csv" else "\n")
    return 0
