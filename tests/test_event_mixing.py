"""Event mixing of detection training windows (`xval.tasks.detection.mixing`)."""

import functools

import numpy as np
import pytest

from preprocessing import features
from xval import Output, tasks
from xval.core.errors import ParameterError
from xval.core.parameters import InstanceParams
from xval.tasks.detection.mixing import GAIN_DB, MARGIN_FRAMES
from xval.tasks.detection.mixing import EventMixer as _EventMixer

EventMixer = functools.partial(_EventMixer, features=features)


def _batch(rng, rows=6, frames=50, bins=8):
    """Rows of flat background (power 1e-3, in dB) of which row 0 holds one event: 10
    frames whose power is 1.0 higher in bins 2-4; the others none."""
    power = np.full((rows, frames, bins), 1e-3) * rng.uniform(0.9, 1.1, (rows, frames, bins))
    y = np.zeros((rows, frames, 2), np.float32)
    power[0, 20:30, 2:5] += 1.0
    y[0, 20:30, 1] = 1
    return (10 * np.log10(power)).astype(np.float32), y


@pytest.mark.parametrize("compression, feature", [("db", "mel"), ("db", "stft"),
                                                  ("log", "mel"), ("log", "cqt"),
                                                  ("power", "mel"), ("none", "stft")])
def test_event_mixer_energy_round_trips(compression, feature, rng):
    mixer = EventMixer(0.5, feature=feature, compression=compression, power_exponent=0.3)
    x = rng.uniform(0.01, 3.0, (4, 7)).astype(np.float64)
    if compression == "db":
        x = 10 * np.log10(x)
    np.testing.assert_allclose(mixer.values(mixer.energy(x)), x, rtol=1e-6, atol=1e-9)


def test_event_mixer_pastes_another_windows_event_with_its_targets(rng):
    x, y = _batch(rng)
    mixer = EventMixer(1.0, feature="mel", compression="db", seed=3)
    mixed, targets = mixer(x, y, epoch=0, index=0)
    assert mixed.dtype == np.float32 and mixed.shape == x.shape
    for i in range(1, len(x)):  # every row but the donor receives its event
        marked = np.flatnonzero(targets[i, :, 1])
        assert len(marked) == 10 and np.ptp(marked) == 9  # the event's 10 frames, whole
        assert not targets[i, :, 0].any()  # no other class
        changed = np.flatnonzero(np.abs(mixed[i] - x[i]).max(axis=1) > 1e-4)
        # Where it landed: the event's frames and a margin, in the bins it raised only.
        assert marked[0] - MARGIN_FRAMES <= changed.min() and changed.max() <= \
            marked[-1] + MARGIN_FRAMES
        energy = 10 ** (mixed[i, marked] / 10) - 10 ** (x[i, marked] / 10)
        assert np.all(energy[:, [0, 1, 5, 6, 7]] < 2e-3)  # the donor's background: removed
        gain = energy[:, 2:5].mean()
        assert 10 ** (GAIN_DB[0] / 10) * 0.8 < gain < 10 ** (GAIN_DB[1] / 10) * 1.2
    # The donor has no other window to take from; the inputs are not changed.
    np.testing.assert_array_equal(mixed[0], x[0])
    assert y[1:].sum() == 0


def test_event_mixer_draws_are_seeded_per_epoch_and_batch(rng):
    x, y = _batch(rng)
    a = EventMixer(0.5, feature="mel", compression="db", seed=1)
    first = a(x, y, 0, 0)
    np.testing.assert_array_equal(first[0], a(x, y, 0, 0)[0])  # the same draws again
    assert not np.array_equal(first[0], a(x, y, 1, 0)[0])      # another epoch
    none = EventMixer(1e-9, feature="mel", compression="db", seed=1)(x, y, 0, 0)
    np.testing.assert_array_equal(none[0], x)


def test_event_mixer_refuses_stores_it_cannot_mix():
    with pytest.raises(ParameterError, match=r"event_mix=0.5: mixes spectrogram magnitudes.*"
                                             r"feature='mfcc'.*or event_mix=0"):
        EventMixer(0.5, feature="mfcc", compression="db")

    mixer = tasks.get("detection").targets.mixer
    params = InstanceParams(front_end="mel").replace(event_mix=0.5)
    with pytest.raises(ParameterError, match="through front_end=mel"):
        mixer(params, {"feature": "waveform"}, features, 0)
    assert mixer(params.replace(event_mix=0.0), {"feature": "mel"}, features, 0) is None
    assert tasks.get("classification").targets.mixer(params, {}, features, 0) is None


def test_a_detection_fold_trains_on_event_mixed_batches(tmp_path):
    """`event_mix` through the engine: the fold's training batches are mixed (more active
    frames than the same rows hold in the store, features changed there), validation
    batches never, and a fold with it and `boundary_weight` trains and is scored."""
    import architectures
    from tests.test_detection_task import ITEMS, sparse_store
    from xval.config import params as _params
    from xval.config.loader import load_config
    from xval.core.records import Job
    from xval.tasks.losses import WeightedFrameCrossentropy
    from xval.training.fold import run_fold
    from xval.training.prepare import fold_batches, prepare_fold

    store = sparse_store(tmp_path / "data" / "sparse")
    spec = {"architecture": "gru_detector", "reshaping_type": "rnn", "units": 4,
            "num_layers": 1, "epochs": 2, "patience": 2, "batch_size": 8, "min_epochs": 0,
            "warmup_epochs": 0, "event_mix": 1.0, "boundary_weight": 1.0}
    params = _params.resolve(1, spec, training_defaults=load_config(None).training,
                             task_type="detection", architectures=architectures)
    job = Job(instance=1, fold=0, params=params, items=ITEMS, task_type="detection",
              generator=False, store=str(store.path))
    fold = prepare_fold(job)
    train, val = fold_batches(fold)
    served = sum(float(np.asarray(train[i][1]).sum()) for i in range(len(train)))
    assert served > float(np.asarray(store.targets)[fold.rows["train"]].sum())  # one epoch
    x_val, y_val = val[0][:2]
    np.testing.assert_array_equal(np.asarray(y_val), np.asarray(store.targets)[
        fold.rows["val"][:len(y_val)]])
    assert isinstance(fold.task.head.loss(params, store.targets[fold.rows["train"]]),
                      WeightedFrameCrossentropy)
    result = run_fold(job)
    assert result.ok and np.isfinite(result.history["loss"]).all()
    assert "event_f1" in result.metrics["test"]  # every window its own clip here


def test_event_mix_on_a_store_it_cannot_mix_is_refused_by_the_dry_run(tmp_path):
    """`event_mix` on a PCEN store is refused when the run is planned (the dry run), naming
    the instance, instead of failing at its first fold (issue 74)."""
    import json

    from tests.conftest import write_config
    from tests.test_detection_task import sparse_store
    from xval import Experiment
    from xval.config.loader import load_config

    config = load_config(write_config(tmp_path))
    store = sparse_store(config.data_dir / "sed")
    info = json.loads((store.path / "dataset.json").read_text())
    info["feature_params"].update(feature="mel", compression="pcen")
    (store.path / "dataset.json").write_text(json.dumps(info))
    experiment = Experiment(description="mix", dataset="sed", number=1, num_folds=3,
                            task_type="detection", config=str(config.path))
    experiment[1] = {"architecture": "gru_detector", "reshaping_type": "rnn", "units": 4,
                     "event_mix": 0.5, "comment_1": "a", "comment_2": "b"}
    with pytest.raises(ParameterError, match=r"instance 1: event_mix=0.5: mixes spectrogram "
                                             r"magnitudes.*compression='pcen'"):
        experiment.run(config=config, dry_run=True, output=Output(out=lambda *a: None))
    assert not (config.results_dir / "sed").exists()
