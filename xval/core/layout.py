"""The results folder: every path in it, named once.

    results/<dataset>/experiment_<N>/          ExperimentLayout
        experiment_<N>_description.txt
        experiment_<N>.xlsx                    derived: rebuilt after every instance
        code/                                  snapshot of the code and environment;
                                               commands.json: every run's command line
        folds.json, dataset.json
        search.journal, search/                with --search
        nested/outer_<i>/                      with --search --inner-folds K: one outer
                                               fold's inner search (an ExperimentLayout)
        instance_<k>/                          InstanceLayout
            params.json, summary.json, error.txt, trial.json, nested.json
            fold_<i>.json, fold_<i>.keras, fold_<i>.skops
            predictions_fold_<i>.csv, val_predictions_fold_<i>.csv,
            plot_data_fold_<i>.json, logs/fold_<i>/
            ensemble.json                      an ensemble of instances (derived)
            final.keras, final.json            after --refit
            plots/
        instance_<k>.previous/                 set aside by --overwrite until the new run ends

Nothing else in the project spells these names: readers and the recorder ask a layout.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from xval.core.errors import ConfigurationError
from xval.core.outputs import OwnedFolder

_INSTANCE = re.compile(r"instance_(\d+)")
_FOLD_FILE = re.compile(r"fold_(\d+)\.json")
_FOLD_MODEL = re.compile(r"fold_(\d+)\.keras")
PREVIOUS_SUFFIX = ".previous"

_OWN = ("params.json", "dataset.json", "summary.json", "error.txt", "trial.json",
        "nested.json", "final.keras", "final.json", "fold_*.json", "fold_*.keras", "fold_*.skops",
        "predictions_fold_*.csv", "val_predictions_fold_*.csv", "plot_data_fold_*.json",
        "ensemble.json")
INSTANCE_OUTPUT = OwnedFolder(
    kind="an instance's results", command="the experiment's recorder", markers=(),
    entries=(*_OWN, *(f".{name}.*" for name in _OWN), "plots/**", "logs/**"))
"""What an `instance_<k>` folder holds (`xval.core.outputs`): `--overwrite` replaces such
a folder, never one holding anything else."""


@dataclasses.dataclass(frozen=True)
class InstanceLayout:
    """The paths of one `instance_<k>` folder.

    Args:
        root: the folder.
        id: the instance id `k`.
    """

    root: Path
    id: int

    @classmethod
    def parse(cls, path: str | Path) -> InstanceLayout | None:
        """The layout of `path` when it is named `instance_<k>`, else `None`."""
        path = Path(path)
        match = _INSTANCE.fullmatch(path.name)
        return cls(path, int(match.group(1))) if match else None

    @classmethod
    def of_folder(cls, folder: str | Path) -> InstanceLayout:
        """The layout of a folder holding an instance's models and records.

        The folder need not be named `instance_<k>` (a copied or renamed instance folder
        still holds its files under their own names): its id is then unknown, -1.
        """
        return cls.parse(folder) or cls(Path(folder), -1)

    @classmethod
    def of_fold_model(cls, path: str | Path) -> tuple[InstanceLayout, int] | None:
        """Where the files of a fold model are (its fold record, its embedding classifier):
        for a `fold_<i>.keras`, the layout of its folder (`of_folder`) and `i`; `None` for
        a model of another name."""
        fold = cls.fold_of_model(path)
        if fold is None:
            return None
        return cls.of_folder(Path(path).parent), fold

    @property
    def params_file(self) -> Path:
        return self.root / "params.json"

    @property
    def dataset_file(self) -> Path:
        """The description of the instance's own store, when it names one (`dataset`)."""
        return self.root / "dataset.json"

    @property
    def summary_file(self) -> Path:
        return self.root / "summary.json"

    @property
    def error_file(self) -> Path:
        return self.root / "error.txt"

    @property
    def trial_file(self) -> Path:
        return self.root / "trial.json"

    @property
    def nested_file(self) -> Path:
        """What a nested search chose in every outer fold (`NestedRecord`)."""
        return self.root / "nested.json"

    @property
    def plots_dir(self) -> Path:
        return self.root / "plots"

    @property
    def final_model(self) -> Path:
        return self.root / "final.keras"

    @property
    def final_record(self) -> Path:
        return self.root / "final.json"

    @property
    def previous(self) -> Path:
        """Where `--overwrite` sets the folder aside until the new results complete."""
        return self.root.with_name(self.root.name + PREVIOUS_SUFFIX)

    def fold_file(self, fold: int) -> Path:
        return self.root / f"fold_{fold}.json"

    def fold_model(self, fold: int) -> Path:
        return self.root / f"fold_{fold}.keras"

    def fold_classifier(self, fold: int) -> Path:
        return self.root / f"fold_{fold}.skops"

    def predictions(self, fold: int) -> Path:
        return self.root / f"predictions_fold_{fold}.csv"

    def val_predictions(self, fold: int) -> Path:
        """The predictions of the fold's validation rows (a `split` column first)."""
        return self.root / f"val_predictions_fold_{fold}.csv"

    @property
    def ensemble_file(self) -> Path:
        """What an ensemble of instances is made of (`EnsembleRecord`)."""
        return self.root / "ensemble.json"

    def plot_data(self, fold: int) -> Path:
        return self.root / f"plot_data_fold_{fold}.json"

    def log_dir(self, fold: int) -> Path:
        return self.root / "logs" / f"fold_{fold}"

    def fold_plot(self, name: str, fold: int) -> Path:
        """A per-fold plot, `plots/<name>_fold_<i>.png` (e.g. detection's `activity`)."""
        return self.plots_dir / f"{name}_fold_{fold}.png"

    def fold_plots(self, fold: int) -> list[Path]:
        """The per-fold plots of `fold` (`plots/*_fold_<i>.png`), sorted."""
        return sorted(self.plots_dir.glob(f"*_fold_{fold}.png"))

    def fold_files(self) -> dict[int, Path]:
        """The `fold_<i>.json` files present, by fold number."""
        return self._numbered("fold_*.json", _FOLD_FILE)

    def fold_models(self) -> dict[int, Path]:
        """The `fold_<i>.keras` files present, by fold number."""
        return self._numbered("fold_*.keras", _FOLD_MODEL)

    def _numbered(self, glob: str, name: re.Pattern[str]) -> dict[int, Path]:
        found = {int(m.group(1)): p for p in self.root.glob(glob)
                 if (m := name.fullmatch(p.name))}
        return dict(sorted(found.items()))

    def model_record(self, model: str | Path) -> Path | None:
        """The fold record (`fold_<i>.json`) that goes with a fold model `fold_<i>.keras`
        of this folder; `None` for another file (e.g. `final.keras`)."""
        fold = self.fold_of_model(model)
        return None if fold is None else self.fold_file(fold)

    @staticmethod
    def fold_of_model(path: str | Path) -> int | None:
        """The fold number of a `fold_<i>.keras` path, else `None`."""
        match = _FOLD_MODEL.fullmatch(Path(path).name)
        return int(match.group(1)) if match else None


@dataclasses.dataclass(frozen=True)
class ExperimentLayout:
    """The paths of one `experiment_<N>` folder.

    Args:
        root: the folder.
    """

    root: Path

    @classmethod
    def of(cls, results_dir: str | Path, dataset: str, number: int) -> ExperimentLayout:
        """The folder of experiment `number` on `dataset` under `results_dir`.

        A dataset given as a path outside the data folder (absolute) is named by its last
        part: its results go under `results_dir/<name>`, never into the store.
        """
        name = Path(dataset)
        if name.is_absolute():
            name = Path(name.name)
        return cls(Path(results_dir) / name / f"experiment_{number}")

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def folds_file(self) -> Path:
        return self.root / "folds.json"

    @property
    def dataset_file(self) -> Path:
        return self.root / "dataset.json"

    @property
    def code_dir(self) -> Path:
        return self.root / "code"

    @property
    def commands_file(self) -> Path:
        """The command line of every run (`code/commands.json`)."""
        return self.code_dir / "commands.json"

    @property
    def workbook(self) -> Path:
        return self.root / f"{self.root.name}.xlsx"

    @property
    def description_file(self) -> Path:
        return self.root / f"{self.root.name}_description.txt"

    @property
    def search_journal(self) -> Path:
        return self.root / "search.journal"

    @property
    def search_dir(self) -> Path:
        return self.root / "search"

    @property
    def lock_target(self) -> Path:
        """What a runner locks while it writes the experiment-level files."""
        return self.root / "experiment"

    def outer_fold(self, fold: int) -> ExperimentLayout:
        """The folder of outer fold `fold`'s inner search (a nested search)."""
        return ExperimentLayout(self.root / "nested" / f"outer_{fold}")

    def instance(self, instance_id: int) -> InstanceLayout:
        return InstanceLayout(self.root / f"instance_{instance_id}", instance_id)

    def instances(self) -> list[InstanceLayout]:
        """The `instance_<k>` folders present, by id."""
        if not self.root.is_dir():
            return []
        found = [InstanceLayout.parse(p) for p in self.root.iterdir() if p.is_dir()]
        return sorted((f for f in found if f is not None), key=lambda f: f.id)

    def looks_like_experiment(self) -> bool:
        """Whether the folder holds an experiment's results (`folds.json` or an
        `instance_<k>` folder)."""
        return self.folds_file.is_file() or bool(self.instances())


def check_experiment_folder(exp_dir: str | Path) -> None:
    """Checks that `exp_dir` holds an experiment's results, before anything is written.

    Raises:
        ConfigurationError: when it is missing, or has neither `folds.json` nor an
            `instance_<k>` folder (e.g. a feature store).
    """
    layout = ExperimentLayout(Path(exp_dir))
    if not (layout.root.is_dir() and layout.looks_like_experiment()):
        what = "an experiment folder (no folds.json, no instance_<k> folders)" \
            if layout.root.is_dir() else "a folder"
        raise ConfigurationError(f"{layout.root} is not {what}; pass an experiment's results "
                                 "folder, results/<dataset>/experiment_<N>.")
