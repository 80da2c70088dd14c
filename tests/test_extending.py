"""Extending the tool without touching it (issue 24, docs/architecture.md "where to add X"):
a feature type, an executor and a workbook sheet, each registered from this test module
(outside the packages), then a real experiment that uses all three: audio files decoded,
a store of the new feature type, folds run by the new executor, the workbook with the new
sheet read back; and a source, a `python -m preprocessing` command once registered."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from openpyxl import load_workbook

import preprocessing.features as features
from preprocessing import sources
from preprocessing.build import build_store, feature_params
from preprocessing.store import FeatureStore
from tests.conftest import write_config
from xval import Experiment, Output
from xval.executors.base import Execution, Executor, JobQueue, Results, run_job
from xval.executors.registry import register, unregister
from xval.report.workbook import register_sheet, unregister_sheet

SAMPLE_RATE = 8000
BANDS = 4


def band_energy(y: np.ndarray, *, sample_rate: int, n_fft: int = 256,
                hop_length: int = 128) -> np.ndarray:
    """A toy feature type: the log energy of `BANDS` equal bands of the magnitude STFT.

    Returns:
        `np.ndarray [shape=(frames, BANDS)]`.
    """
    del sample_rate
    padded = np.pad(y, n_fft // 2)
    frames = 1 + (len(padded) - n_fft) // hop_length
    index = np.arange(n_fft)[None, :] + hop_length * np.arange(frames)[:, None]
    spectrum = np.abs(np.fft.rfft(padded[index] * np.hanning(n_fft), axis=1)) ** 2
    bands = np.array_split(spectrum, BANDS, axis=1)
    return np.log1p(np.stack([b.sum(axis=1) for b in bands], axis=1)).astype(np.float32)


class RecordingExecutor(Executor):
    """A toy executor: the inline one, remembering the jobs it ran."""

    name = "recording"
    ran: list[tuple[int, int]] = []

    @classmethod
    def create(cls, options: Execution) -> "RecordingExecutor":
        return cls()

    def run(self, queue: JobQueue) -> Results:
        while (job := queue.pop()) is not None:
            RecordingExecutor.ran.append((job.instance, job.fold))
            yield run_job(job, self.job_hook(job))


def seconds_sheet(sheet, context):
    """A toy sheet: each instance's training seconds."""
    sheet.append(["ID", "folds", "seconds"])
    for r in context.results:
        sheet.append([r.id, len(r.folds), sum(f.seconds for f in r.folds)])


@pytest.fixture
def extensions():
    """Registers the three extensions for one test, and removes them after it."""
    features.register("band_energy", bins=lambda params: BANDS)(band_energy)
    register(RecordingExecutor)
    register_sheet("Seconds", order=45)(seconds_sheet)
    RecordingExecutor.ran = []
    yield
    features.registry.unregister("band_energy")
    unregister("recording")
    unregister_sheet("Seconds")


def _recordings(folder):
    """Two classes (a low and a high tone in noise), 4 speakers, 3 files each."""
    rng = np.random.default_rng(0)
    t = np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE
    rows = []
    for speaker in range(4):
        for label, hz in (("low", 300.0), ("high", 2500.0)):
            for k in range(3):
                y = 0.3 * np.sin(2 * np.pi * hz * t) + 0.05 * rng.standard_normal(len(t))
                path = folder / f"{label}_{speaker}_{k}.wav"
                sf.write(path, y.astype(np.float32), SAMPLE_RATE)
                rows.append({"path": str(path), "label": label, "item": f"speaker{speaker}",
                             "clip": path.name})
    return pd.DataFrame(rows)


def test_a_feature_type_an_executor_and_a_sheet_from_outside(extensions, tmp_path):
    from xval.config.loader import load_config

    config = load_config(write_config(tmp_path))
    audio = tmp_path / "audio"
    audio.mkdir()
    params = feature_params(config.features, feature="band_energy", sample_rate=SAMPLE_RATE,
                            n_fft=256, hop_length=128, segment_seconds=0.5)
    store, _ = build_store(_recordings(audio), config.data_dir / "toy", params=params,
                           workers=1, progress=False)
    assert store.features.shape[1:] == (32, BANDS)
    assert store.info["feature_params"]["feature"] == "band_energy"

    exp = Experiment(description="extending", dataset="toy", number=1, num_folds=2,
                     config=str(config.path))
    exp[1] = {"architecture": "mlp", "reshaping_type": "none", "hidden_units": 8,
              "num_layers": 1, "epochs": 2, "batch_size": 8, "comment_1": "toy",
              "comment_2": ""}
    outcome = exp.run(config=config, executor="recording", output=Output(out=lambda *a: None))
    assert outcome.exit_code == 0
    assert sorted(RecordingExecutor.ran) == [(1, 0), (1, 1)]
    book = load_workbook(config.results_dir / "toy" / "experiment_1" / "experiment_1.xlsx")
    assert book.sheetnames.index("Seconds") == book.sheetnames.index("Folds") + 1
    rows = list(book["Seconds"].iter_rows(values_only=True))
    assert rows[0] == ("ID", "folds", "seconds") and rows[1][:2] == (1, 2)
    assert rows[1][2] > 0


def test_the_registries_name_the_extensions_and_forget_them(extensions):
    from xval.config import schema

    assert "band_energy" in features.names()
    assert schema.check("features", "feature", "band_energy") == "band_energy"
    assert schema.check("backend", "executor", "recording") == "recording"
    features.registry.unregister("band_energy")
    with pytest.raises(ValueError, match="feature='band_energy': expected one of"):
        features.get("band_energy")


class Listing(sources.Source):
    """A toy source: a text file of `PATH LABEL ITEM` lines (paths relative to the file)."""

    name = "listing"
    help = "a text file of PATH LABEL ITEM lines"
    reads = sources.Reads("LISTING", "the listing file", kind="file")
    options = (sources.Option("--separator", "the column separator", default=" "),)

    def read(self, paths, values):
        listing = Path(paths[0])
        rows = []
        for line in listing.read_text().splitlines():
            path, label, item = line.split(values["separator"])
            rows.append({"path": str(listing.parent / path), "label": label, "item": item,
                         "clip": path})
        return sources.source_table(rows, [], f"Listing {listing}")


@pytest.fixture
def listing_source():
    """Registers the toy source for one test, and removes it after it."""
    sources.register(Listing)
    yield
    sources.SOURCES.unregister("listing")


def test_a_source_from_outside_is_a_preprocessing_command(listing_source, tmp_path, capsys):
    from xval.cli.preprocess import main

    config = write_config(tmp_path)
    audio = tmp_path / "audio"
    audio.mkdir()
    table = _recordings(audio)
    (audio / "files.txt").write_text("\n".join(
        f"{Path(r.path).name};{r.label};{r.item}" for r in table.itertuples()))
    code = main(["listing", str(audio / "files.txt"), "--separator", ";", "--out",
                 str(tmp_path / "store"), "--config", str(config), "--sample-rate",
                 str(SAMPLE_RATE), "--segment-seconds", "0.5", "--workers", "1", "-q"])
    assert code == 0, capsys.readouterr().err
    assert capsys.readouterr().out.startswith("Wrote ")
    store = FeatureStore(tmp_path / "store")
    assert len(store.meta) == len(table) and store.classes == ["high", "low"]
    assert sorted(store.meta["item"].unique()) == [f"speaker{s}" for s in range(4)]
    assert "listing" in sources.names()
