"""The structure rules of issue 34, checked on the source so that a regression fails CI:
one results reader, no string reads of `[training]` keys or `dataset.json` keys outside
their typed records, no task or feature name spelt outside its own package, one registry
class with one message shape, each parameter declared once. (The 400-line limit on a
module is retired, issue 55: a module's size follows its concept.)

The checks read the source with `ast` (what `grep` would find, without its false hits in
docstrings and comments)."""

import ast
import re

import pytest

from tests.conftest import ROOT
from xval import tasks

PACKAGES = ("xval", "architectures", "preprocessing", "augmentation")


def _modules() -> dict[str, str]:
    """Library module path (relative to the root) -> source."""
    return {str(path.relative_to(ROOT)): path.read_text()
            for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                             ast.AsyncFunctionDef)) and node.body \
                and isinstance(node.body[0], ast.Expr) \
                and isinstance(node.body[0].value, ast.Constant):
            found.add(id(node.body[0].value))
    return found


def _string_literals(source: str, schema: bool = False) -> list[tuple[int, str]]:
    """`(line, text)` of every string constant that is not a docstring (nor, in the typed
    records that declare the keys, a field's default: `setting(default, ...)`, as `[features]
    feature` defaults to a feature type)."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    if schema:
        calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
                 and isinstance(node.func, ast.Name) and node.func.id == "setting"]
        skip |= {id(call.args[0]) for call in calls if call.args}
        skip |= {id(kw.value) for call in calls for kw in call.keywords
                 if kw.arg in ("default", "absent")}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in skip]


def _key_reads(source: str, keys: set[str], receiver: re.Pattern) -> list[str]:
    """Reads `x["key"]` and `x.get("key", ...)` of a key in `keys`, where `x` (as
    written) matches `receiver`: `"line: text"` each."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) \
                and isinstance(node.slice, ast.Constant) and node.slice.value in keys:
            target, key = node.value, node.slice.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "get" and node.args \
                and isinstance(node.args[0], ast.Constant) and node.args[0].value in keys:
            target, key = node.func.value, node.args[0].value
        else:
            continue
        if receiver.search(ast.unparse(target)):
            found.append(f"{node.lineno}: {ast.unparse(target)}[{key!r}]")
    return found


# -- 1. one reader -----------------------------------------------------------------------

def test_rules_one_read_record_and_one_digest_cache():
    modules = _modules()
    read_record = [m for m, s in modules.items() if re.search(r"\bdef read_record\b", s)]
    assert read_record == ["xval/core/storage/store.py"]
    # The digest cache is xval.core.hashing's (issue 37 checks stores by content through
    # it; the reader hashes models through it).
    caches = [m for m, s in modules.items()
              if re.search(r"\b_digests\b|lru_cache[^\n]*\n\s*def _?\w*(sha256|digest)", s)]
    assert caches == ["xval/core/hashing.py"]
    # Result files are parsed only by the reader (the recorder writes through it).
    parsers = [m for m, s in modules.items()
               if re.search(r"(FoldResult|ParamsRecord|FoldsManifest|TrialRecord|"
                            r"InstanceSummary|FinalModelRecord)\.from_dict\(read_json", s)]
    assert parsers == []


# -- 2. typed parameters -----------------------------------------------------------------

def test_rules_no_string_reads_of_training_keys():
    """`[training]` keys and the mandatory names are read through `TrainingParams` /
    `InstanceParams` (`params.epochs`), not by string (`params["epochs"]`)."""
    from xval.config import schema
    from xval.core.parameters import MANDATORY

    keys = set(schema.SCHEMA["training"]) | set(MANDATORY)
    receiver = re.compile(r"(^|[._])params$|^p$|(^|\.)training$|^typed$")
    found = {m: hits for m, s in _modules().items()
             if not m.startswith("xval/config/schema") and (hits := _key_reads(s, keys, receiver))}
    assert found == {}


def test_rules_no_string_reads_of_feature_params():
    """A store's feature parameters are read through `FeatureParams` (`params.hop_length`)
    and the pretrained type's options through `PretrainedOptions`, not by string
    (`params["hop_length"]`, `fp.get("encoder")`); the schema's own rules between keys
    (`values["n_mfcc"]`, checked before any record exists) are the exception."""
    from preprocessing.features import get
    from preprocessing.features.pretrained import PRETRAINED
    from xval.config import schema

    keys = (set(schema.SCHEMA["features"]) - {"workers"}) | set(get(PRETRAINED).options)
    receiver = re.compile(r"(^|[._])params$|^fp$|(^|[._])feature_params$|(^|\.)options$")
    found = {m: hits for m, s in _modules().items()
             if not m.startswith("xval/config/schema") and (hits := _key_reads(s, keys, receiver))}
    assert found == {}


def test_rules_no_string_reads_of_config_sections():
    """A `Config` section is a typed record: `config.folds.val_fraction`."""
    from xval.config import schema
    from xval.config.loader import Config, load_config
    from xval.config.sections import SECTIONS
    from xval.core.settings import Settings

    found = {}
    for section, keys in schema.SCHEMA.items():
        receiver = re.compile(rf"(^|\.){section}$")
        for m, s in _modules().items():
            hits = _key_reads(s, set(keys), receiver)
            if hits and not m.startswith("xval/config/schema"):
                found[f"{m} [{section}]"] = hits
    assert found == {}
    config = load_config(None)
    assert isinstance(config, Config)
    for section, record in SECTIONS.items():
        assert isinstance(getattr(config, section), record)
        assert issubclass(record, Settings)


def test_rules_no_string_reads_of_dataset_json():
    """`dataset.json` is read through `DatasetInfo` (`store.info.feature_params`)."""
    keys = {"task_type", "classes", "n_rows", "feature_shape", "dtype", "n_items",
            "n_clips", "content_hash", "feature_params", "sample_rate", "skipped",
            "n_files", "augment_versions", "extraction_seconds", "front_end",
            "annotations", "annotation_options", "source", "store"}
    receiver = re.compile(r"(^|\.)(info|dataset_info)$")
    found = {m: hits for m, s in _modules().items()
             if m != "xval/core/dataset_info.py" and (hits := _key_reads(s, keys, receiver))}
    assert found == {}


def test_rules_a_parameter_is_declared_once_as_a_field_of_its_record():
    """The schema is derived from the records: every key is a field declared with
    `setting` (its type the annotation, its default, range and help the call), and a field
    added to a record is a key with its constraint, flag, config.ini text and the neutral
    value of a key added since the first release (`absent`), with nothing else to edit."""
    import argparse
    import dataclasses

    from xval import tasks
    from xval.config import schema
    from xval.config.sections import SECTIONS
    from xval.core.parameters import TrainingParams
    from xval.core.settings import absent_values, keys_of, setting, setting_names

    for section, record in SECTIONS.items():
        declared = [n for n in setting_names(record) if n in keys_of(record)]
        if section == "training":  # and the registered tasks' own (`Task.parameters`)
            declared += list(tasks.parameter_keys())
        assert list(schema.SCHEMA[section]) == declared, section
    added, core = schema.ADDED_KEYS["training"], absent_values(TrainingParams)
    assert {k: added[k] for k in core} == core  # and the tasks' own (their `absent=`)
    assert set(added) - set(core) <= set(tasks.parameter_keys())
    assert added == {}  # release 0.1.0: no key was added after it yet

    @dataclasses.dataclass(frozen=True, eq=False)
    class Extended(TrainingParams):
        warmup_ratio: float | None = setting(0.1, "warm-up as a fraction of the epochs",
                                             low=0, high=1, absent=0.0,
                                             notes="Warm-up as a fraction of the epochs.")

    key = keys_of(Extended)["warmup_ratio"]
    assert (key.kind, key.none, key.default, key.expected()) == \
        ("float", True, 0.1, "a number in [0, 1] (finite), or none")
    assert Extended().warmup_ratio == 0.0 and absent_values(Extended)["warmup_ratio"] == 0.0
    assert list(keys_of(Extended))[:-1] == list(keys_of(TrainingParams))

    with pytest.raises(TypeError, match="annotation is one of str, int, float, bool"):
        @dataclasses.dataclass(frozen=True, eq=False)
        class Listed(TrainingParams):
            names: list[str] = setting("a", "names")

        keys_of(Listed)
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=keys_of(TrainingParams)["epochs"].type)
    assert parser.parse_args(["--epochs", "3"]).epochs == 3


# -- 3. one registry class, facts asked of the entries -----------------------------------

TASK_NAMES = set(tasks.names())
"""The built-in tasks (those `xval.tasks` registers on import)."""
FEATURE_NAMES = {"stft", "mel", "mfcc", "cqt", "pretrained"}
FEATURE_MODULES = ("preprocessing/features/", "architectures/front_end.py",
                   "architectures/encoders/", "xval/report/card_snippet.py")
"""Where feature types are named: their package, and the Keras layer that computes the
spectral types inside a model (`front_end`), a second implementation of theirs checked
against them (tests/test_front_end.py), the encoders' input layers built on it, and the
model card's program, which writes each spectral type's librosa call out for a reader
without this project (a third, checked against predict in tests/test_export.py)."""


EXTRAS_MODULE = "xval/core/optional.py"
"""The registry of pip extras, named as pyproject.toml names them: its `pretrained` is the
extra (transformers), not the feature type of that name."""


def test_rules_no_task_or_feature_name_outside_its_package():
    """A task or feature type is asked through its hooks and facts (`Task.takes_store`,
    `FeatureType.has_frequencies`), never recognised by its name elsewhere."""
    spelt = []
    for module, source in _modules().items():
        mirrors = module in ("xval/core/parameters.py", "xval/config/sections.py")
        for line, text in _string_literals(source, mirrors):
            if text in TASK_NAMES and not module.startswith("xval/tasks/"):
                spelt.append(f"{module}:{line}: task {text!r}")
            if text in FEATURE_NAMES and not module.startswith(FEATURE_MODULES) \
                    and module != EXTRAS_MODULE:
                spelt.append(f"{module}:{line}: feature type {text!r}")
    assert spelt == []


def test_rules_no_undeclared_task_or_feature_attribute_is_read():
    found = [f"{m}: {hit}" for m, s in _modules().items()
             for hit in re.findall(r"getattr\((?:task|kind|feature)\w*, \"\w+\"", s)]
    assert found == []


def _registries():
    import architectures
    import xval.report.workbook  # noqa: F401  (registers the sheets)
    from architectures.hf import FAMILIES
    from architectures.registry import ARCHITECTURES
    from preprocessing.features import TYPES
    from preprocessing.features.encoders import BUILT_IN
    from xval.executors.registry import EXECUTORS
    from xval.report.workbook.registry import SHEETS
    from xval.tasks import TASKS

    del architectures
    return {"architecture": ARCHITECTURES, "feature": TYPES, "task_type": TASKS,
            "executor": EXECUTORS, "sheet": SHEETS, "encoder": BUILT_IN, "family": FAMILIES}


def test_rules_the_registries_are_one_class():
    """The five registries of issue 34, and the built-in encoders and the transformers
    families (issue 67) added since."""
    from xval.core.registry import Registry

    registries = _registries()
    assert all(type(r) is Registry for r in registries.values()), registries
    assert {setting: r.setting for setting, r in registries.items()} == \
        {setting: setting for setting in registries}


@pytest.mark.parametrize("setting, lookup, typo, closest", [
    ("architecture", "architectures.get", "vgg_mnii", "vgg_mini"),
    ("feature", "preprocessing.features.get", "mell", "mel"),
    ("task_type", "xval.tasks.get", "clasification", "classification"),
    ("executor", "xval.executors.registry.get", "proces", "process"),
    ("sheet", "xval.report.workbook.unregister_sheet", "Sumary", "Summary"),
    ("encoder", "preprocessing.features.encoders.BUILT_IN.get", "aisfz", "aisfx"),
    ("family", "architectures.hf.FAMILIES.get", "speach", "speech"),
])
def test_rules_an_unknown_name_has_one_message_shape(setting, lookup, typo, closest):
    """Every registry refuses an unknown name with the same error and the same words: the
    setting and the name, the registered names, where they are registered, the closest."""
    import importlib

    from xval.core.registry import UnknownNameError

    registry = _registries()[setting]
    module, _, name = lookup.rpartition(".")
    if module.endswith((".BUILT_IN", ".FAMILIES")):
        parent, _, attribute = module.rpartition(".")
        found = getattr(importlib.import_module(parent), attribute).get
    else:
        found = getattr(importlib.import_module(module), name)
    with pytest.raises(UnknownNameError) as raised:
        found(typo)
    known = ", ".join(registry.names())
    kinds = re.sub(r"y$", "ie", registry.kind) + "s"
    assert re.fullmatch(rf"{setting}={re.escape(repr(typo))}: expected one of "
                        rf"{re.escape(known)} \(the {kinds} registered in "
                        rf"{re.escape(registry.where)}\)\. Did you mean [^?]*"
                        rf"{re.escape(repr(closest))}[^?]*\?", str(raised.value)), raised.value
    assert isinstance(raised.value, ValueError)


def _named(node: ast.AST) -> set[str]:
    return {n.id if isinstance(n, ast.Name) else n.attr for n in ast.walk(node)
            if isinstance(n, (ast.Name, ast.Attribute))}


def test_rules_a_transformers_family_is_asked_not_tested():
    """Issue 67: a family carries its behaviour (`Family.accepts`, `check`,
    `store_defaults`), so no module tests which family it holds (`isinstance(f,
    ClapFamily)`, `cls is SpeechFamily`), and the families are the registry, not a tuple
    kept by hand."""
    found = []
    for path, source in _modules().items():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in ("isinstance", "issubclass") and len(node.args) == 2:
                tested = _named(node.args[1])
            elif isinstance(node, ast.Compare) and any(
                    isinstance(op, (ast.Is, ast.IsNot)) for op in node.ops):
                tested = set().union(*(_named(c) for c in [node.left, *node.comparators]))
            else:
                continue
            if any(name.endswith("Family") for name in tested):
                found.append(f"{path}:{node.lineno}")
        assert not re.search(r"^FAMILIES\b.*= \(", source, re.MULTILINE), path
    assert not found, found


def test_rules_choice_lists_in_the_schema_come_from_the_registries():
    import preprocessing.features  # noqa: F401  (binds the feature types)
    import xval.executors  # noqa: F401  (binds the executors)
    from xval.config import schema
    from xval.executors.registry import EXECUTORS

    executor = schema.SCHEMA["backend"]["executor"]
    feature = schema.SCHEMA["features"]["feature"]
    assert "{choices}" in executor.notes and "{choices}" in feature.notes
    for name in EXECUTORS.names():
        assert f"{name} ({EXECUTORS.get(name).summary})" in executor.note()
    assert all(name in feature.note() for name in preprocessing.features.names())


def test_rules_no_two_public_classes_share_a_name():
    """One name, one concept (issue 67): no two library modules define a public class of
    the same name (`xval.Ensemble` is the declaration; the computed one is
    `FusedEnsemble`; `xval.Output` the run's output options, `OwnedFolder` the folder a
    command owns; `ComparedPair` and `DuplicatePair`)."""
    defined: dict[str, list[str]] = {}
    for path, source in _modules().items():
        for node in ast.parse(source).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                defined.setdefault(node.name, []).append(path)
    assert {name: paths for name, paths in defined.items() if len(paths) > 1} == {}


def test_rules_regularisers_declared_once():
    """An option's off value, and whether it regularises, are declared with its key
    (`setting(off=, regulariser=)`); the plain set, the short-run warning's list, the fit
    defaults and the recipes derive them: no other module spells two off values."""
    from xval.config.params import PLAIN_TRAINING
    from xval.running.checks import REGULARISERS

    assert PLAIN_TRAINING == {"lr_schedule": "constant", "min_epochs": 0, "warmup_epochs": 0,
                              "time_masks": 0, "freq_masks": 0, "mixup_alpha": 0.0,
                              "label_smoothing": 0.0, "freq_warp": 0.0, "time_warp": 0.0}
    assert set(REGULARISERS) == {"time_masks", "freq_masks", "mixup_alpha", "label_smoothing",
                                 "freq_warp", "time_warp"}
    found = []
    for path, source in _modules().items():
        if path == "xval/core/parameters.py":
            continue
        for node in ast.walk(ast.parse(source)):
            pairs = [(k.value, v) for k, v in zip(node.keys, node.values)
                     if isinstance(k, ast.Constant)] if isinstance(node, ast.Dict) else \
                [(k.arg, k.value) for k in node.keywords] if isinstance(node, ast.Call) else []
            spelt = [k for k, v in pairs if k in PLAIN_TRAINING and isinstance(v, ast.Constant)
                     and v.value == PLAIN_TRAINING[k]]
            if len(spelt) >= 2:
                found.append(f"{path}:{node.lineno}: {spelt}")
    assert found == []


def test_rules_ensembles_each_aspect_once():
    """An ensemble of instances, each aspect in one room (issue 67), one package (issue 73;
    the map is `xval.ensembles`'s docstring): the weightings declared once (the record), a
    member's clips pooled once (the task's rule, `xval.tasks.fusion`), the weights' arithmetic
    and the computation once each, in the package; none in the report."""
    modules = _modules()
    assert [m for m, s in modules.items() if re.search(r"^WEIGHTINGS\b.*=", s, re.M)] == \
        ["xval/core/records/ensemble.py"]
    assert [m for m, s in modules.items() if re.search(r"^def pooled\(", s, re.M)] == \
        ["xval/tasks/fusion.py"]
    for name in ("choose_weights", "weight_grid", "fused"):
        assert [m for m, s in modules.items() if re.search(rf"^def {name}\(", s, re.M)] == \
            ["xval/ensembles/fusion.py"], name
    assert [m for m, s in modules.items() if re.search(r"^def compute_ensemble\(", s, re.M)] \
        == ["xval/ensembles/compute.py"]
    assert not [m for m in modules if m.startswith("xval/report/") and "ensemble" in m]


_DUPLICATES_ROOM = "preprocessing/duplicates/"
_COMMAND_LINES = "xval/cli/"
"""Where the check is printed and `--merge-duplicates` handed over: the commands' plumbing."""
_OTHER_DUPLICATE_NAMES = {
    # `dataset.json`'s `duplicates` entry, read by its typed record (the key stays on disk).
    "xval/core/dataset_info.py: duplicates",
    # The code's fingerprint that a Ray node compares: another concept than audio's.
    "xval/executors/ray.py: project_fingerprint",
}
"""Names with `duplicate` or `fingerprint` outside the duplicate check, each with its reason."""
_OTHER_LEAKS = {
    # An embedding model trained on a fold's test items (issue 43): not a duplicate.
    "xval/training/embeddings.py: check_no_leak",
}
"""Names with `leak` that are not about files holding the same audio."""


def test_rules_duplicates_one_room_one_word():
    """Files that hold the same audio are one concept, in one room, under one word (issue 67):
    no library module, function or class is named after the content check, shared audio,
    crossing pairs or leaks, and no message, help or label says "content check" or "shared
    audio"; every function and class named after duplicates or fingerprints is in
    `preprocessing/duplicates/` (or is the command lines' plumbing), but the named
    exceptions."""
    old = re.compile(r"content_?check|shared_?audio|crossing|leak", re.IGNORECASE)
    ours = re.compile(r"duplicate|fingerprint", re.IGNORECASE)
    named, outside, said = [], [], []
    for path, source in _modules().items():
        said += [f"{path}:{line}: {text!r}" for line, text in _string_literals(source)
                 if re.search(r"content check|shared audio", text, re.IGNORECASE)]
        names = [path] + [node.name for node in ast.walk(ast.parse(source))
                          if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                               ast.ClassDef))]
        named += [f"{path}: {name}" for name in names if old.search(name)]
        if not path.startswith((_DUPLICATES_ROOM, _COMMAND_LINES)):
            outside += [f"{path}: {name}" for name in names[1:] if ours.search(name)]
    assert said == []
    assert sorted(set(named) - _OTHER_LEAKS) == []
    assert sorted(set(outside) - _OTHER_DUPLICATE_NAMES) == []
    assert _OTHER_LEAKS <= set(named) and _OTHER_DUPLICATE_NAMES <= set(outside)  # not stale


def test_rules_store_named_only_at_entry_points():
    """The results store is handed in (issues 67 and 73): the planner puts it on the plan,
    the recorder and the ensembles take it from there, the report, the MLflow listener and
    inference are handed it (a store of their own by default); `RESULTS_STORE`, the
    process's store, is named only where a process chooses its store: the `Experiment`
    facade and the two commands that write or export results (`ensemble`, `export`)."""
    named = sorted(m for m, s in _modules().items()
                   if re.search(r"^\s*from xval\.core\.storage(\.store)? import[^\n]*"
                                r"\bRESULTS_STORE\b|\bstorage\.RESULTS_STORE\b(?!`)", s, re.M)
                   and not m.startswith("xval/core/storage/"))
    assert named == ["xval/cli/ensemble.py", "xval/cli/export.py",
                     "xval/running/experiment.py"]


_SAME_MEANING = {
    "add_parser": "a command module's hook: adds its parser to `python -m xval`",
    "get": "a registry's look-up, in each registry's module (`architectures.get`)",
    "names": "a registry's names", "register": "a registry's decorator",
    "unregister": "a registry's removal",
    "main": "a program's entry (`python -m xval`, `preprocessing`, `augmentation`, a worker)",
    "parser": "a program's command line (`python -m preprocessing`, `augmentation`)",
    "check": "a value checked against its declaration, returned (`schema.check`: a key's; "
             "`constraints.check`: the constraints given)",
}


def test_rules_a_public_function_name_means_one_thing():
    """One name, one meaning (issue 73): a public function name defined at the top of two
    library modules is a protocol each module follows (a registry's `get`, a command's
    `add_parser`), never two different things (`window_starts` was the start samples of a
    store's segments, the first frames of detection's overlapping windows and each row's
    start in seconds)."""
    defined: dict[str, list[str]] = {}
    for path, source in _modules().items():
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                defined.setdefault(node.name, []).append(path)
    twice = {name for name, paths in defined.items() if len(paths) > 1}
    assert sorted(twice - set(_SAME_MEANING)) == []
    assert set(_SAME_MEANING) <= twice  # not stale


def test_rules_one_lock_or_refuse():
    """An instance's lock is tried in one place (`Recorder.claim`; `Recorder.holding` refuses
    with the caller's words), not once per runner (issue 73: 7 copies)."""
    trying = sorted(m for m, s in _modules().items() if "acquire(timeout=0)" in s)
    assert trying == ["xval/running/recorder.py"]


def _bool_ladder(node: ast.AST) -> bool:
    """`isinstance(x, bool) or not isinstance(x, T)` (or `isinstance(x, T) and not
    isinstance(x, bool)`): a hand-written check of a value's type."""
    def refuses_bool(n: ast.AST) -> bool:
        return isinstance(n, ast.Call) and getattr(n.func, "id", "") == "isinstance" \
            and "bool" in ast.unparse(n.args[1])
    if not isinstance(node, ast.BoolOp):
        return False
    parts = [p.operand if isinstance(p, ast.UnaryOp) else p for p in node.values]
    return any(refuses_bool(p) for p in parts) and any(
        isinstance(p, ast.Call) and getattr(p.func, "id", "") == "isinstance"
        and not refuses_bool(p) for p in parts)


def test_rules_no_bool_ladders_outside_the_validator():
    """Valid values are declared (`xval.core.constraints`) and checked by its validator; no
    module spells `isinstance(x, bool) or not isinstance(x, int)` (issue 73: the GPU ids,
    the NVML count, kaldi's and Lhotse's numbers did)."""
    found = [f"{path}:{node.lineno}" for path, source in _modules().items()
             if path != "xval/core/constraints.py"
             for node in ast.walk(ast.parse(source)) if _bool_ladder(node)]
    assert found == []


def test_rules_no_history_in_the_library():
    """Docstrings, comments and messages say what the code does, not its history: no library
    module names an issue ("issue 44"); history goes to CHANGELOG.md and docs/results.md."""
    found = [f"{path}:{n}: {line.strip()}" for path, source in _modules().items()
             for n, line in enumerate(source.splitlines(), start=1)
             if re.search(r"\b[Ii]ssues? #?\d+", line)]
    assert found == []


def test_rules_no_compatibility_paths():
    """Release 0.1.0 reads and accepts only what it writes and documents: no module warns of a
    deprecation or reads a record of another format (`read_version` refuses one without
    `"format"`), and the tasks are never guessed from what results hold."""
    found = [f"{path}:{n}: {line.strip()}" for path, source in _modules().items()
             for n, line in enumerate(source.splitlines(), start=1)
             if re.search(r"DeprecationWarning|READ_DEFAULTS|\.get\(\"format\", 1\)|"
                          r"tasks\.infer\b|def infer\b", line)]
    assert found == []
