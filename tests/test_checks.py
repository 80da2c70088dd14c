"""The data checks printed before training (`xval.running.checks`): the short-run warning
suggests only the fixes not yet applied."""

from xval import Experiment, Output

INSTANCE = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "",
            "comment_2": ""}
REGULARISED = {"epochs": 3, "mixup_alpha": 0.2, "time_masks": 2, "freq_masks": 2,
               "label_smoothing": 0.1}


def _dry_run(config, overrides):
    exp = Experiment(description="t", dataset="tiny", number=1, num_folds=2,
                     parameters=REGULARISED, config=str(config.path))
    exp[1] = dict(INSTANCE)
    lines = []
    assert exp.run(config=config, dry_run=True, overrides=overrides,
                   output=Output(out=lines.append)).exit_code == 0
    return [line for line in lines if "trains at most" in line]


def test_short_run_warning_names_only_the_regularisers_still_on(config, store):
    (before,) = _dry_run(config, {})
    assert ("--set time_masks=0 --set freq_masks=0 --set mixup_alpha=0 "
            "--set label_smoothing=0") in before  # in the order of the parameter reference
    # The fix the warning gave, applied in part: the rest is named, never the applied part.
    (after,) = _dry_run(config, {"mixup_alpha": 0, "time_masks": 0, "freq_masks": 0})
    assert "(label_smoothing; the default epochs is 60)" in after
    assert "turn it off (--set label_smoothing=0)" in after
    assert "mixup_alpha" not in after and "time_masks" not in after
    assert _dry_run(config, {"mixup_alpha": 0, "time_masks": 0, "freq_masks": 0,
                             "label_smoothing": 0}) == []
