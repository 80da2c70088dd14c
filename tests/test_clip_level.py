"""Clip-level scores cover every fold (issue 13, item 4): a fold whose clips all have one
segment scores the same at both levels, and means and paired tests never drop it."""

import pytest

from xval.core.records import FoldResult, InstanceSummary


def _fold(i, segment, clip=None):
    metrics = {s: {"accuracy": segment, "loss": 1.0} for s in ("train", "val", "test")}
    fold = {"instance": 1, "fold": i, "status": "ok", "metrics": metrics, "format": 2}
    if clip is not None:
        fold["clip_metrics"] = {s: {"accuracy": clip, "loss": 1.0}
                                for s in ("train", "val", "test")}
    return FoldResult.from_dict(fold)


def test_summary_clip_level_falls_back_to_segments_for_single_segment_folds():
    folds = [_fold(0, 0.5, clip=0.9), _fold(1, 0.6), _fold(2, 0.7)]
    summary = InstanceSummary.from_folds(folds, 3)
    clip = summary.metrics["clip"]["test"]["accuracy"]
    assert clip.n == 3
    assert clip.mean == pytest.approx((0.9 + 0.6 + 0.7) / 3)
    assert summary.metric("accuracy", "test") == pytest.approx(0.6)
    assert folds[1].level_metrics("clip") is folds[1].metrics
    assert folds[0].level_metrics("clip") is folds[0].clip_metrics
    # Without any clip metrics there is no clip level at all.
    assert "clip" not in InstanceSummary.from_folds([_fold(0, 0.5), _fold(1, 0.6)], 2).metrics


def test_every_fold_of_a_segmented_store_records_clip_metrics(store, tmp_path):
    """A fold whose test item has only single-segment clips still records clip metrics when
    other clips of the store have several segments."""
    import numpy as np

    from preprocessing.store import write_store
    from tests.test_training import job, run_fold

    meta = store.meta.copy()
    test_rows = meta["item"] == "item5"
    meta.loc[test_rows, "clip"] = [f"single{i}" for i in range(int(test_rows.sum()))]
    mixed = write_store(tmp_path / "mixed", np.asarray(store.features), meta)
    test_clips = mixed.clips[mixed.items == "item5"]
    assert len(set(test_clips)) == len(test_clips)  # one segment per test clip
    result = run_fold(job(mixed, tmp_path, epochs=1))
    assert result["clip_metrics"] is not None
    assert set(result["clip_metrics"]) == {"train", "val", "test"}
    # One segment per clip: the clip level equals the segment level on test.
    assert result["clip_metrics"]["test"]["accuracy"] == pytest.approx(
        result["metrics"]["test"]["accuracy"])
