"""`python -m xval export MODEL_OR_INSTANCE --format onnx|keras|savedmodel --out DIR`: the
fold ensemble of a complete instance (or one `.keras` model) as one model for use outside
the project, with its model card (`MODEL_CARD.md`)."""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from preprocessing.features.encoders import BUILT_IN
from preprocessing.store import FeatureStore
from xval.cli.backend import choose_backend
from xval.cli.commands import COMMANDS
from xval.core.arguments import Subcommands
from xval.core.backend import use_backend
from xval.core.dataset_info import DatasetInfo
from xval.core.errors import ConfigurationError, XvalError
from xval.core.files import make_temp_dir, read_json
from xval.core.hashing import FOLD_FIX
from xval.core.layout import ExperimentLayout, InstanceLayout
from xval.core.optional import EXTRAS
from xval.core.records import EnsembleRecord, FoldsManifest, InstanceStatus
from xval.core.storage import RESULTS_STORE
from xval.core.version import version_line
from xval.ensembles import export as export_ensemble
from xval.ensembles.predict import ensemble_postprocessing, ensemble_record, member_folders
from xval.inference import export as E
from xval.inference.detect import chosen_postprocessing
from xval.inference.models import ModelSet, dataset_info_for, resolve_models, task_of_info
from xval.report.card import CardFacts, model_card
from xval.report.results import InstanceResult


def add_parser(sub: Subcommands, parents: list[argparse.ArgumentParser]
               ) -> None:
    """Adds the `export` command."""
    p = sub.add_parser("export", parents=parents, help=COMMANDS["export"].help)
    p.add_argument("model", help="an instance_<k> folder (its fold models, averaged into one "
                                 "model) or a .keras file")
    p.add_argument("--format", required=True, choices=E.FORMATS,
                   help=f"onnx (torch backend, `{EXTRAS['export'].install}`), savedmodel "
                        "(tensorflow backend) or keras")
    p.add_argument("--out", required=True, help="the export folder (created)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out when it exists (else an error, nothing written)")
    p.add_argument("--dataset-info", help="dataset.json with the feature parameters "
                                          "(default: found next to the model)")


def main_export(args: argparse.Namespace) -> int:
    """Runs `export`; the format chooses the backend (`keras`: as the other model commands,
    `choose_backend`). An ensemble of instances (`ensemble.json`) goes to `_export_ensemble`."""
    out, source = Path(args.out), Path(args.model)
    E.check_request(args.format, out, args.overwrite, [source])  # before anything is read
    record = ensemble_record(source, RESULTS_STORE)
    if record is not None:
        return _export_ensemble(args, source, record, out)
    instance, models = _source(source)
    info = dataset_info_for(models.paths[0], args.dataset_info)
    E.check_torch_only(args.format, models.paths)
    _backend(args.format)
    line = _export_one(args, source, out, args.overwrite, (instance, models, info))
    if not args.quiet:
        print(line)
    return 0


def _backend(fmt: str) -> None:
    """Sets the backend the format is exported on."""
    wanted = E.BACKENDS[fmt]
    if wanted is None:
        choose_backend(None)
    else:
        use_backend(wanted, source=f"--format {fmt}", override=True)


def _export_one(args: argparse.Namespace, source: Path, out: Path, overwrite: bool,
                found: tuple[InstanceResult | None, ModelSet, DatasetInfo]) -> str:
    """Exports one instance's fold models (or one model) with its card; returns the line
    saying what was written."""
    instance, models, info = found
    model = E.ensemble(models, task_of_info(info), info)
    facts = _facts(args, source, info, instance, model)
    facts.rules = E.export_metadata(info, task_of_info(info), model)
    facts.rules.update(E.postprocessing_rule(chosen_postprocessing(models)))
    exported = E.write_export(model, args.format, out, lambda check: model_card(
        _with_check(facts, check), instance, _manifest(instance)), overwrite, [source],
        metadata=facts.rules)
    what = {"onnx": "ONNX", "savedmodel": "SavedModel"}.get(args.format, args.format)
    check = f"; {what} vs Keras: max difference {exported.check:.1e}" \
        if exported.check is not None else ""
    return (f"Exported {models.description} as {args.format} to {out} "
            f"({', '.join(exported.files)}; input {exported.input_name} "
            f"{exported.input_shape}{check}).")


def _export_ensemble(args: argparse.Namespace, source: Path, record: EnsembleRecord,
                     out: Path) -> int:
    """Exports an ensemble of instances: one model with the members inside when every
    member's models take audio of the same rate and segment length (`export_ensemble.ensemble_model`),
    else each member apart (`member_<k>/`, with its own card) under a card stating the fusion."""
    if args.dataset_info:
        raise ConfigurationError(f"--dataset-info: {source} is an ensemble of instances, whose "
                                 "members each read their own dataset.json; leave it out.")
    ensemble, _ = _source(source, models=False)
    folders = member_folders(source, record, RESULTS_STORE)
    found = [(*_source(folder), dataset_info_for(folder / "fold_0.keras")) for folder in folders]
    E.check_torch_only(args.format, [p for _, models, _ in found for p in models.paths])
    _backend(args.format)
    task = task_of_info(found[0][2])
    apart = export_ensemble.apart_reason([(f"instance {m}", models, info) for m, (_, models, info)
                            in zip(record.instances, found)])
    weights = record.weights()
    if not apart:
        model = export_ensemble.ensemble_model([models for _, models, _ in found], weights, task,
                        [info for _, _, info in found])
        info = found[0][2]
        facts = _facts(args, source, info, ensemble, model)
        facts.front_end = " + ".join(dict.fromkeys(  # the members' (an ensemble has none)
            member.parameters.front_end for member, _, _ in found if member is not None))
        facts.rules = {**E.export_metadata(info, task, model),
                       "clip_rule": task.scoring.ensemble_clip_rule or "",
                       "ensemble": json.dumps(dict(zip(map(str, record.instances), weights))),
                       **E.postprocessing_rule(ensemble_postprocessing(source, RESULTS_STORE))}
        card = export_ensemble.ensemble_card(ensemble, record, None)
        exported = E.write_export(model, args.format, out, lambda check: model_card(
            _with_check(facts, check), ensemble, _manifest(ensemble)) + card, args.overwrite,
            [source, *folders], metadata=facts.rules)
        lines = [f"Exported the ensemble {source.name} ({record.describe()}) as one "
                 f"{args.format} model to {out} ({', '.join(exported.files)}; input audio "
                 f"{exported.input_shape}; outputs scores and member_scores)."]
    else:
        tmp = make_temp_dir(out.parent, prefix=f".{out.name}.")
        try:
            lines = [_export_one(args, folder, tmp / f"member_{k}", False, member)
                     for k, folder, member in zip(record.instances, folders, found)]
            (tmp / E.CARD).write_text(export_ensemble.ensemble_card(ensemble, record, apart))
            E.replace_folder(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        lines = [f"{apart}: the members were exported apart, member_<k>/ under {out}, and "
                 f"{E.CARD} states the fusion ({record.describe()}).",
                 *(line.replace(str(tmp), str(out)) for line in lines)]
    if not args.quiet:
        print("\n".join(lines))
    return 0


def _source(path: Path, models: bool = True) -> tuple[InstanceResult | None, ModelSet]:
    """The instance (read through the results store) and the models to export (with
    `models=False`, an empty `ModelSet`: the instance alone, checked complete).

    Raises:
        ConfigurationError: for a folder that is not an instance, an incomplete instance, or
            a file that is not a `.keras` model.
    """
    if path.is_dir():
        layout = InstanceLayout.parse(path)
        if layout is None:
            raise ConfigurationError(
                f"{path} is not an instance_<k> folder; pass an instance folder of a run "
                "(results/<dataset>/experiment_<N>/instance_<k>) or a .keras file.")
        manifest = RESULTS_STORE.manifest(ExperimentLayout(layout.root.parent))
        instance = InstanceResult(path, manifest.num_folds if manifest else None,
                                  results_store=RESULTS_STORE)
        if instance.invalid:  # a changed file, not an unfinished run: name it
            why = "; ".join(f"fold {i}: {reason}" for i, reason in sorted(
                instance.invalid.items()))
            raise ConfigurationError(
                f"{path.name} has folds whose files cannot be believed ({why}): "
                f"{FOLD_FIX}.")
        if instance.status != InstanceStatus.COMPLETE.value:
            done = instance.summary.folds_done
            raise ConfigurationError(
                f"{path.name} is {instance.status} ({done} of {instance.summary.num_folds} "
                "folds done): only a complete instance's ensemble is exported; finish it "
                f"(rerun its experiment script with {instance.id}) or export one fold's "
                f"model ({path.name}/fold_<i>.keras).")
        return instance, resolve_models(path, ensemble=True, results_store=RESULTS_STORE) \
            if models else ModelSet([], "", RESULTS_STORE)
    if path.suffix != ".keras" or not path.is_file():
        raise ConfigurationError(f"{str(path)!r} is neither an instance_<k> folder nor a "
                                 ".keras file; pass one of them.")
    owner = InstanceLayout.parse(path.parent)
    owned = InstanceResult(path.parent, results_store=RESULTS_STORE) if owner is not None \
        else None
    return owned, resolve_models(path, results_store=RESULTS_STORE)


def _manifest(instance: InstanceResult | None) -> FoldsManifest | None:
    if instance is None:
        return None
    return RESULTS_STORE.manifest(ExperimentLayout(instance.path.parent))


def _facts(args: argparse.Namespace, source: Path, info: DatasetInfo,
           instance: InstanceResult | None, model: Any) -> CardFacts:
    """What the card says beside the results (see `CardFacts`)."""
    return CardFacts(
        source=str(source), fmt=args.format, files=[E.FILES[args.format], E.CARD],
        input_name=model.inputs[0].name, input_shape=tuple(model.input_shape[1:]),
        members=len([x for x in model.layers if x.name.startswith("fold_model_")]),
        check=None, front_end=instance.parameters.front_end if instance is not None else "none",
        info=info,
        encoder=_encoder(info) or _network_encoder(model), code=_code(instance),
        class_counts=_class_counts(info, instance),
        date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"))


def _with_check(facts: CardFacts, check: float | None) -> CardFacts:
    facts.check = check
    return facts


def _encoder(info: DatasetInfo) -> dict[str, Any] | None:
    """The store's pretrained encoder (`dataset.json` `front_end`), with its licence; for
    several encoders' embeddings side by side, their names (`aisfx+birdnet`) and licences."""
    described = info.front_end
    name = described.get("encoder") or described.get("stacked")
    if not name:
        return None
    described.setdefault("encoder", name)
    known = BUILT_IN.get(str(name))
    if known is not None:
        described.setdefault("licence", known.licence)
        described.setdefault("trained_on", known.trained_on)
    return described


def _network_encoder(model: Any) -> dict[str, Any] | None:
    """The transformers network inside `model` (`front_end = "hf:..."`), as its layer
    records it, or `None`."""
    stack = list(getattr(model, "layers", ()))
    while stack:
        layer = stack.pop()
        if hasattr(layer, "describe") and type(layer).__name__ == "TransformersNetwork":
            return dict(layer.describe())
        stack.extend(getattr(layer, "layers", ()))
    return None


def _code(instance: InstanceResult | None) -> dict[str, Any]:
    """The code that trained (the run's snapshot: `code/git.json`, `environment.json`) and
    the code that exports."""
    code: dict[str, Any] = {"exported_with": version_line()}
    if instance is None:
        return code
    folder = ExperimentLayout(instance.path.parent).code_dir
    for name, keys in (("git.json", ("commit", "dirty")), ("environment.json",
                                                          ("keras", "backend"))):
        try:
            found = read_json(folder / name)
        except (OSError, ValueError):
            continue
        code.update({k: found.get(k) for k in keys if isinstance(found, dict)})
    return code


def _class_counts(info: DatasetInfo, instance: InstanceResult | None
                  ) -> dict[int, dict[str, dict[str, int]]] | None:
    """Fold -> split -> class -> rows (original rows), from the store when it is still
    where the run read it; `None` otherwise."""
    if instance is None or not info.store:
        return None
    try:
        store = FeatureStore(info.store)
    except (XvalError, OSError, ValueError):
        return None
    meta = store.meta[~store.augmented]
    out = {}
    for record in instance.folds:
        out[record.fold] = {split: dict(Counter(meta["label"][meta["item"].isin(items)]))
                            for split, items in record.items.items()}
    return out
