"""Every module of `benchmarks/` runs end to end at a tiny size, so that none can rot: the real
code path (its stores, trainings and subprocesses), on a few generated recordings, checked by
the table or ratio it prints. The figures at these sizes mean nothing; `benchmarks/README.md`
gives each module's real size, run time and the docs figure it produced. The GPU benchmark's
own tests (no GPU: its prepared calls, its refusals, its dry run) are
`tests/test_gpu_benchmark.py`."""

import re

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import run_here, run_script_here, tiny_store

SPEAKERS = ("alice", "bob", "carol")


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """A `--datasets-dir` laid out as `../shared/datasets`: FSDD's `recordings/` (3 speakers x
    10 digits x 2 takes, 8 kHz WAV) and RAVDESS's `audio/Actor_XX/` (3 actors x 2 emotions x 2
    takes, 16 kHz FLAC), each file a short tone in noise of its own."""
    root = tmp_path_factory.mktemp("datasets")
    rng = np.random.default_rng(0)

    def write(path, rate, seconds, freq):
        t = np.arange(int(rate * seconds)) / rate
        y = 0.4 * np.sin(2 * np.pi * freq * t) + 0.02 * rng.normal(size=t.size)
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, y.astype(np.float32), rate)

    for s, speaker in enumerate(SPEAKERS):
        for digit in range(10):
            for take in range(2):
                write(root / "fsdd" / "recordings" / f"{digit}_{speaker}_{take}.wav", 8000,
                      0.3 + 0.05 * take, 300 + 150 * digit + 40 * s)
    for actor in range(1, 4):
        for emotion in ("01", "05"):
            for take in ("01", "02"):
                name = f"03-01-{emotion}-01-01-{take}-{actor:02d}.flac"
                write(root / "ravdess" / "audio" / f"Actor_{actor:02d}" / name, 16000, 1.0,
                      200 * int(emotion) + 30 * actor)
    return root


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """`benchmarks.startup`'s scratch project, made in this process: a tiny store named
    `demo` (6 items, 3 classes) and its experiment (2 instances, 2 folds, 1 epoch) run."""
    from benchmarks import startup

    root = tmp_path_factory.mktemp("project")
    (root / "config.ini").write_text("[paths]\ndata_dir = data\nresults_dir = results\n")
    tiny_store(root / "data", "demo", clips_per_class=2)
    script = root / "experiments" / "tiny.py"
    script.parent.mkdir()
    script.write_text(startup.EXPERIMENT)
    done = run_script_here(script, "-q", cwd=root)
    assert done.returncode == 0, done.stderr
    assert (root / startup.EXP_DIR / "instance_2").is_dir()
    return root


def test_augmentation_prints_its_speed_up(datasets):
    from benchmarks import augmentation

    done = run_here(augmentation.main, "--files", 3, "--versions", 1, "--workers", 2,
                    "--datasets-dir", datasets)
    assert done.returncode == 0, done.stderr
    for name in ("fsdd", "ravdess"):
        assert re.search(rf"^{name}: 3 files x \(1 \+ 1\), 2 worker\(s\): [\d.]+ s of audio",
                         done.stdout, re.M), done.stdout
        assert re.search(rf"^{name}: speed-up with 2 workers: [\d.]+x$", done.stdout, re.M)


def test_feature_extraction_prints_its_ratio(datasets):
    from benchmarks import feature_extraction

    done = run_here(feature_extraction.main, "--limit", 4, "--workers", 2, "--datasets-dir",
                    datasets)
    assert done.returncode == 0, done.stderr
    for name in ("fsdd", "ravdess"):
        assert re.search(rf"^{name}: 4 files, \d+ segments \| plain loop .* \| ratio [\d.]+ "
                         r"\(target >= 1.80: (met|NOT met)\)$", done.stdout, re.M), done.stdout


def test_duplicates_prints_recall_on_planted_copies_and_at_scale(datasets):
    """The planted copies of one set (two transformations), then the `--scale` check of 100
    generated files, its verification in 1 and in 2 processes (the memory watcher of
    `benchmarks._tree_memory` included)."""
    import json

    from benchmarks import duplicates

    done = run_here(duplicates.main, "--datasets", "fsdd", "--transforms", "exact", "gain",
                    "--datasets-dir", datasets)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout[done.stdout.index("\n{") + 1:])
    planted = report["fsdd"]["methods"]["landmarks"]["planted"]
    assert report["fsdd"]["files"] == 60 and set(planted) == {"exact", "gain"}
    assert planted["exact"]["10%"]["planted"] == 6 and planted["exact"]["10%"]["recall"] == 1.0
    done = run_here(duplicates.main, "--scale", 100, "--workers", 2, "--datasets-dir",
                    datasets)
    assert done.returncode == 0, done.stderr
    scale = json.loads(done.stdout[done.stdout.index("\n{") + 1:])["scale"][0]
    assert scale["files"] == 100 and scale["planted"] == 1 and scale["identical"]
    assert scale["several"]["tree_pss_gb"] > 0 and scale["speedup"] > 0


def test_startup_prints_the_cpu_seconds_of_each_command(project):
    from benchmarks import startup

    done = run_here(startup.main, "--project", project, "--only", "version,report",
                    "--repeats", 1)
    assert done.returncode == 0, done.stderr
    rows = done.stdout.splitlines()[-2:]
    assert [row.split()[0] for row in rows] == ["version", "report"], done.stdout
    assert all(re.fullmatch(r"\S+ +[\d.]+ +[\d.]+ +\S.*", row) for row in rows), done.stdout
    assert rows[0].endswith("none"), done.stdout  # `--version` imports no backend


def test_training_options_prints_each_instance_against_the_baseline(project):
    from benchmarks import training_options

    done = run_here(training_options.main, project / "results/demo/experiment_1",
                    "--baseline", 1)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()
            if re.match(r"^[12] ", line)}
    assert rows["1"][1:3] == ["2", "2"] and len(rows["1"]) == 9, done.stdout  # the baseline
    assert all(re.fullmatch(r"[+-]?\d\.\d{3}", cell) for cell in rows["2"][-4:]), done.stdout


def test_encoders_probe_and_table(project):
    """`probe` on a store's pooled rows over the engine's folds; `table` of an experiment's
    instances against one of them, the folds paired by their test items."""
    from benchmarks import encoders

    done = run_here(encoders.main, "probe", "demo", "--folds", 3, "--config",
                    project / "config.ini", cwd=project)
    assert done.returncode == 0, done.stderr
    assert re.match(r"^demo: 36 clips, dim 12; probe accuracy [\d.]+ ± [\d.]+ +\[", done.stdout)
    experiment = project / "results/demo/experiment_1"
    done = run_here(encoders.main, "table", experiment, "--baseline",
                    experiment / "instance_1")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["instance_1", "instance_2"], done.stdout
    assert re.search(r"vs baseline [+-][\d.]+, p = [\d.]+$", lines[1]), done.stdout


def test_sed_eval_reference_compares_every_case():
    """Against sed_eval itself where it can be imported, else against its recorded numbers
    (`tests/test_sound_event_metrics.py` tests the cases one by one)."""
    from benchmarks import sed_eval_reference

    done = run_here(sed_eval_reference.main)
    assert done.returncode == 0, done.stderr
    counts = re.search(r"^(\d+) (?:recorded )?cases: (\d+) equal to sed_eval", done.stdout, re.M)
    assert counts and counts.group(1) == counts.group(2), done.stdout
    assert re.search(r"^scoring \d+ cases \(median of 5\): project [\d.]+ s", done.stdout, re.M)


def test_tagging_digits_builds_the_set_and_prints_the_baseline(datasets, tmp_path):
    """`build` overlays FSDD digits per speaker; `baseline` fits its one-vs-rest regression
    on a store of the set over an experiment's folds (`folds.json`: one speaker each)."""
    import pandas as pd

    from benchmarks import tagging_digits
    from tests.manifests import manifest_text
    from xval.cli.preprocess import main as preprocessing

    out = tmp_path / "digit_tags"
    done = run_here(tagging_digits.main, "build", "--out", out, "--fsdd",
                    datasets / "fsdd" / "recordings", "--clips", 12, "--seconds", 1)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Wrote 36 clips of 1 s (3 speakers, ")
    manifest = pd.read_csv(out / "manifest.csv")
    assert len(manifest) == 36 and manifest["label"].str.contains(";").all()
    store = tmp_path / "data" / "digit_tags"
    assert preprocessing(["manifest", str(out / "manifest.csv"), "--label-separator", ";",
                          "--out", str(store), "--workers", "1", "--no-progress",
                          "-q"]) == 0
    experiment = tmp_path / "experiment"
    experiment.mkdir()
    (experiment / "folds.json").write_text(manifest_text(
        [{"train": [a], "val": [b], "test": [c]}
         for a, b, c in (("alice", "bob", "carol"), ("bob", "carol", "alice"))]))
    done = run_here(tagging_digits.main, "baseline", experiment, "--store", store)
    assert done.returncode == 0, done.stderr
    assert re.search(r"^fold 1: C [\d.]+, test clips 12: .*map [\d.]+", done.stdout, re.M)
    assert re.search(r"^baseline \(one-vs-rest .*\): .*map [\d.]+ ± ", done.stdout, re.M)


def test_envset_builds_its_set_from_a_warm_cache(tmp_path):
    """With every package fetched and unpacked by an earlier run (the cache is kept), the
    build reads them: the rules pick the files, a copy shipped by two packages is dropped, a
    long recording is cut, and the manifest and licences are written. Two packages hold
    audio here (generated); the others hold none."""
    import pandas as pd

    from benchmarks import envset

    cache = tmp_path / "cache"
    (cache / "debs").mkdir(parents=True)
    rng = np.random.default_rng(0)

    def audio(path, seconds, freq, **kind):
        t = np.arange(int(22050 * seconds)) / 22050
        y = 0.3 * np.sin(2 * np.pi * freq * (1 + 0.1 * np.sin(t)) * t) + 0.05 * rng.normal(
            size=t.size)
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, y.astype(np.float32), 22050, **kind)

    for source in envset.SOURCES:
        (cache / "debs" / f"{source.package}_1.0_all.deb").touch()
        folder = cache / "x" / source.package
        (folder / "usr/share/doc" / source.package).mkdir(parents=True)
        (folder / "usr/share/doc" / source.package / "copyright").write_text(source.licence)
        (folder / ".unpacked").touch()
    misc = cache / "x/scorched3d-data/usr/share/games/scorched3d/data/wav/misc"
    audio(misc / "rain.wav", 12.0, 500)
    audio(misc / "dog.wav", 1.5, 900)
    flare = cache / "x/flare-game/usr/share/games/flare/soundfx"
    audio(flare / "bird_twitter_loop.ogg", 2.0, 2500, format="OGG", subtype="VORBIS")
    y, rate = sf.read(misc / "rain.wav")
    sf.write(flare / "rain.ogg", y, rate, format="OGG", subtype="VORBIS")  # a copy
    out = tmp_path / "envset"
    done = run_here(envset.main, "--out", out, "--cache", cache, "--max-per-class-item", 3)
    assert done.returncode == 0, done.stderr
    assert "4 files named by the rules, 1 copies left out:" in done.stdout, done.stdout
    manifest = pd.read_csv(out / "manifest.csv")
    assert sorted(manifest["label"].unique()) == ["bird", "canine", "rain"], manifest
    assert (manifest["label"] == "rain").sum() == 3  # 12 s cut into 4 s clips
    assert re.search(r"^5 clips, 2 items, 3 classes, [\d.]+ min$", done.stdout, re.M)
    assert (out / "licences" / "scorched3d-data.copyright").is_file()


def test_selection_rule_runs_inits_rows_and_judges_both_rules(tmp_path):
    """`run` trains `init`'s rows (an encoder's head, a model from scratch, their ensemble)
    on a log-mel store and an encoder's store (tiny stores here), then both rules' verdicts."""
    from benchmarks import selection_rule
    from tests.conftest import write_config

    config = write_config(tmp_path, training={"epochs": 1, "patience": 1})
    tiny_store(tmp_path / "data", "tiny", n_items=4, clips_per_class=2)
    tiny_store(tmp_path / "data", "tiny_aisfx", n_items=4, clips_per_class=2)
    done = run_here(selection_rule.main, "run", "--dataset", "tiny", "--encoders", "aisfx",
                    "--seeds", 0, "--folds", 2, "--number", 1, "--config", config,
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for rule in ("before", "after"):
        assert re.search(rf"^  {rule}: selects \d .*: (ok|WORSE)$", done.stdout, re.M), \
            done.stdout
        assert re.search(rf"^tiny, {rule}: experiments: best or not worse \(p < 0.1\) in "
                         r"1 of 1, .*; subsets of their rows: ", done.stdout, re.M)


def test_engine_overhead_prints_its_ratios():
    from benchmarks import engine_overhead

    done = run_here(engine_overhead.main, "--smoke")
    assert done.returncode == 0, done.stderr
    for said in (r"^engine / hand-written loop wall time: [\d.]+ \(median",
                 r"^generator / in-memory training throughput: [\d.]+ \(",
                 r"^process / inline wall time: [\d.]+ with a warm worker"):
        assert re.search(said, done.stdout, re.M), done.stdout


def test_compiled_steps_prints_the_engine_against_the_plain_jax_loop():
    """One task's default instance on the default backend (JAX, a process of its own): the
    engine's step and the plain jitted loop's, and their ratio."""
    from benchmarks import compiled_steps

    done = run_here(compiled_steps.main, "--backends", "jax", "--tasks", "classification",
                    "--rows", 64, "--epochs", 2)
    assert done.returncode == 0, done.stderr
    assert re.search(r"^classification +[\d.]+ +[\d.]+ +[\d.]+$", done.stdout, re.M), \
        done.stdout


def test_default_backend_prints_its_arms_and_the_comparison(datasets):
    """`init` on FSDD's files, its experiment run three times in fresh processes and the
    backends compared by `xval compare` (at `--smoke`: every arm on torch)."""
    from benchmarks import default_backend

    done = run_here(default_backend.main, "--datasets", "fsdd", "--files", 12, "--epochs", 1,
                    "--smoke", "--datasets-dir", datasets)
    assert done.returncode == 0, done.stderr
    for arm in ("torch", "auto", "again"):
        assert re.search(rf"^{arm} +torch +\d+ +[\d.]+ +\d+ +[\d.]+$", done.stdout, re.M), \
            done.stdout
    assert "second run's test scores identical to the first's: True" in done.stdout
    assert re.search(r"^\| 2 \| \d+ \| ", done.stdout, re.M), done.stdout


def test_detection_rescores_a_fold_model_under_every_rule():
    """`--smoke`: a tiny detection store, an untrained frame model saved as two folds', their
    records; every post-processing variant scored on each fold's test recording (`cross_fold`
    chosen on the other fold's); another store's experiment and an instance without records
    refused."""
    from benchmarks import detection

    done = run_here(detection.main, "--smoke")
    assert done.returncode == 0, done.stderr
    assert "(2 folds)" in done.stdout, done.stdout
    assert re.search(r"^refused: --store .* holds other data .* than the store .* was run on",
                     done.stdout, re.M), done.stdout
    assert re.search(r"^refused: .*instance_2: no fold records", done.stdout, re.M), \
        done.stdout
    for variant in detection.VARIANTS:
        assert re.search(rf"^\| {variant} \| [\d.]+ ± [\d.]+ \|", done.stdout, re.M), \
            done.stdout
