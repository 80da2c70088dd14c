"""Label-union mixing of tagging training rows (`union_mix`, `xval.tasks.tagging.mixing`):
two training rows summed at a gain, their label sets united, on the host and on the device
alike, never with a row of another side of the fold."""

import numpy as np
import pytest

from tests.conftest import ROOT, resolve
from xval import tasks
from xval.config.loader import load_config
from xval.core.errors import ParameterError
from xval.core.parameters import InstanceParams
from xval.tasks.tagging.mixing import UNION_GAIN_DB, union_draws, unite
from xval.training import devices
from xval.training.batches import make_batches

SHIPPED = load_config(ROOT / "config.ini").training
LOWEST, HIGHEST = (10 ** (db / 20) for db in UNION_GAIN_DB)


def _batches(batches, epochs=3):
    """Every batch of `epochs` epochs, as numpy arrays."""
    out = []
    for _ in range(epochs):
        for i in range(len(batches)):
            out.append([np.asarray(a.cpu() if hasattr(a, "cpu") else a) for a in batches[i]])
        batches.on_epoch_end()
    return out


def _sources(x_row, n_rows):
    """The rows a served row of identity-coded features (row `r`: `r + 1` in bin `r`) was
    made of, and each one's weight in it."""
    values = x_row.reshape(-1, n_rows).max(axis=0)
    found = np.flatnonzero(values > 1e-6)
    return found, values[found] / (found + 1)


@pytest.mark.parametrize("share", [0.0, 0.3, 1.0])
def test_union_draws_pair_another_row_at_a_gain_in_range(share):
    mixed = 0
    for index in range(200):
        partner, gain = union_draws(3, 1, index, 8, share)
        rows = np.arange(8)
        alone = gain == 0
        assert np.all(partner[alone] == rows[alone])  # left as it is
        assert np.all(partner[~alone] != rows[~alone])  # never mixed with itself
        assert np.all((gain[~alone] >= LOWEST - 1e-6) & (gain[~alone] <= HIGHEST + 1e-6))
        mixed += int((~alone).sum())
    assert mixed / 1600 == pytest.approx(share, abs=0.05)
    again = union_draws(3, 1, 5, 8, share)
    np.testing.assert_array_equal(again[0], union_draws(3, 1, 5, 8, share)[0])
    assert not union_draws(0, 0, 0, 1, 1.0)[1].any()  # a batch of one row: nothing to mix


def test_unite_sums_at_the_gain_scaled_back_and_unites_the_labels():
    x = np.array([[1.0, 0.0], [0.0, 4.0], [2.0, 2.0]], np.float32)
    y = np.array([[1, 0, 0], [0, 1, 1], [1, 1, 0]], np.float32)
    w = np.array([1.0, 3.0, 2.0], np.float32)
    partner, gain = np.array([1, 1, 0]), np.array([0.5, 0.0, 1.0], np.float32)
    mx, my, mw = unite(x, y, w, partner, gain)
    np.testing.assert_allclose(mx, [[1 / 1.5, 2 / 1.5], [0, 4], [1.5, 1.0]], rtol=1e-6)
    np.testing.assert_array_equal(my, [[1, 1, 1], [0, 1, 1], [1, 1, 0]])
    np.testing.assert_allclose(mw, [2.5 / 1.5, 3.0, 1.5], rtol=1e-6)


def test_union_batches_mix_only_the_rows_they_serve_on_host_and_device(rng):
    """Rows served from a subset (a fold's training rows) are mixed only with rows of that
    subset, their targets the union of both rows', the gain in range; the device path
    serves the same batches as numpy, epoch by epoch."""
    n = 40
    x = np.zeros((n, 2, n), np.float32)
    x[np.arange(n), :, np.arange(n)] = np.arange(n)[:, None] + 1  # row r: r + 1 in bin r
    y = (rng.uniform(size=(n, 5)) < 0.4).astype(np.float32)
    train = np.sort(rng.choice(n, size=24, replace=False))
    kwargs = {"batch_size": 8, "shuffle": True, "seed": 4, "mixing": _union(0.6)}
    host = _batches(make_batches(x, train, y[train], **kwargs))
    device = _batches(make_batches(x, train, y[train], placement=devices.DEVICE, **kwargs))
    pairs = 0
    for (bx, by), (dx, dy) in zip(host, device, strict=True):
        np.testing.assert_allclose(dx, bx, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(dy, by)
        for row, target in zip(bx, by):
            found, weights = _sources(row, n)
            assert set(found) <= set(train)  # never a row of another side
            np.testing.assert_array_equal(target, y[found].max(axis=0))  # the union
            if len(found) == 2:
                pairs += 1
                gain = weights.min() / weights.max()
                assert LOWEST - 1e-5 <= gain <= HIGHEST + 1e-5
                np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-5)
    assert pairs > 0.4 * 24 * 3


def _union(share):
    """Tagging's own mixing of a batch's rows at `share` (`Targets.mixing`)."""
    return tasks.get("tagging").targets.mixing(InstanceParams().replace(union_mix=share))


def test_union_mix_with_mixup_in_batches_is_an_error():
    assert tasks.get("tagging").targets.mixing(InstanceParams()) is None  # union_mix 0
    with pytest.raises(ValueError, match="mixup_alpha=0.2 and the task's own mixing"):
        make_batches(np.zeros((4, 2, 2)), np.arange(4), np.zeros((4, 2)), batch_size=2,
                     shuffle=True, mixup_alpha=0.2, mixing=_union(0.5))


def _spec(**extra):
    return {"architecture": "pretrained_pool", "reshaping_type": "rnn", "comment_1": "",
            "comment_2": "", **extra}


def test_union_mix_replaces_default_mixup_and_is_refused_where_it_does_not_fit():
    params = resolve(1, _spec(union_mix=0.5), training_defaults=SHIPPED, task_type="tagging")
    assert params["union_mix"] == 0.5 and params["mixup_alpha"] == 0.0
    assert resolve(1, _spec(), training_defaults=SHIPPED, task_type="tagging")["mixup_alpha"]
    with pytest.raises(ParameterError, match="mixup_alpha=0.3 and union_mix=0.5 are two "
                                             "mixings"):
        resolve(1, _spec(union_mix=0.5, mixup_alpha=0.3), training_defaults=SHIPPED,
                task_type="tagging")
    for task_type in ("classification", "regression"):
        with pytest.raises(ParameterError, match="union_mix=0.5 .from instance 1. is a "
                                                 "parameter of task_type='tagging'"):
            resolve(1, _spec(union_mix=0.5), training_defaults=SHIPPED, task_type=task_type)
    with pytest.raises(ParameterError, match="union_mix"):
        resolve(1, _spec(union_mix=1.5), training_defaults=SHIPPED, task_type="tagging")


def test_union_mix_in_training_defaults_is_the_tagging_instances_only():
    """`union_mix` (and another task's own parameter, `event_mix`) in `[training]` of a
    project that also classifies: a classification instance keeps the package defaults
    and keeps the mixup that `union_mix` would replace (naming one is still refused)."""
    defaults = SHIPPED.replace(union_mix=0.3, event_mix=0.5)
    params = resolve(1, _spec(), training_defaults=defaults, task_type="classification")
    assert "union_mix" not in params and "event_mix" not in params
    assert params["mixup_alpha"] == SHIPPED.mixup_alpha > 0
    tagging = resolve(1, _spec(), training_defaults=defaults, task_type="tagging")
    assert tagging["union_mix"] == 0.3 and tagging["mixup_alpha"] == 0.0


def test_a_tagging_fold_mixes_only_its_training_items(tmp_path, rng):
    """Through the engine's fold preparation: every training batch row is made of the
    fold's training rows only, with the union of their labels; validation batches are
    never mixed; the fold trains."""
    from benchmarks.gpu import _write, fold_job
    from xval.tasks.tagging.labels import multi_hot
    from xval.training.fold import run_fold
    from xval.training.prepare import fold_batches, prepare_fold

    n = 48
    x = np.zeros((n, 2, n), np.float32)
    x[np.arange(n), :, np.arange(n)] = np.arange(n)[:, None] + 1
    tags = rng.uniform(size=(n, 4)) < 0.4
    tags[~tags.any(axis=1), 0] = True
    tags[0] = [True, True, False, False]  # rows of one label everywhere are refused
    store = _write(tmp_path / "tags", x, [";".join(f"tag{c}" for c in np.flatnonzero(t))
                                          for t in tags], "tagging")
    spec = {"architecture": "pretrained_pool", "reshaping_type": "rnn", "projection": 0,
            "pooling": "label_attention", "hidden_units": 8, "union_mix": 1.0}
    job = fold_job(store, spec, 2, 8)
    fold = prepare_fold(job)
    y = multi_hot(store.meta["target"], len(store.classes))
    row_of = np.argsort(np.asarray(store.features)[:, 0].argmax(axis=1))  # the store's order
    train = set(fold.rows["train"].tolist())
    for placement in (devices.HOST, devices.DEVICE):
        batches, val = fold_batches(fold, placement)
        for bx, by in _batches(batches, epochs=2):
            for row, target in zip(bx, by):
                found = row_of[_sources(row, n)[0]]
                assert set(found) <= train and 1 <= len(found) <= 2
                np.testing.assert_array_equal(target, y[found].max(axis=0))
        for bx, *_ in _batches(val, epochs=1):  # (x, y, weights)
            assert all(len(_sources(row, n)[0]) == 1 for row in bx)
    result = run_fold(job)
    assert result.ok, result.message
