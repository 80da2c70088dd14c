"""The parameters only tagging reads: the labels' threshold, the focal loss and label-union
mixing."""

from __future__ import annotations

import dataclasses

from xval.core.settings import Settings, setting


@dataclasses.dataclass(frozen=True, eq=False)
class TaggingParams(Settings):
    """Tagging's own instance parameters (`[training]` keys of a tagging experiment)."""

    tag_threshold: float | None = setting(
        None, ("tagging: a label is predicted at this probability; none: chosen per label and "
               "fold on the validation clips"), low=0, high=1, open_low=True, open_high=True,
        notes=("Tagging only: a clip is given every label whose probability reaches "
               "tag_threshold (F1 and predictions; mAP, lwlrap and d-prime need no threshold). "
               "none (the default): each fold chooses one threshold per label on its validation "
               "clips, the one of the label's best F1 there (0.05 to 0.95 in steps of 0.05; 0.5 "
               "for a label without validation clips); it is kept in the fold record, applied "
               "to the test clips and by predict, and written in the model card."))
    focal_gamma: float = setting(
        0.0, "tagging: focal loss with this gamma instead of binary cross-entropy (0: off)",
        low=0, high=10,
        notes=("Tagging only: train on the binary focal cross-entropy (Lin et al. 2017) with "
               "this gamma (0 = plain binary cross-entropy; 2 is usual), which weighs the "
               "labels a model already gets right less: an option for rare labels, as "
               "class_weights is (not both)."))
    union_mix: float = setting(
        0.0, ("tagging: share of training rows that get another training row mixed in, their "
              "labels united, every epoch (0: off)"), low=0, high=1,
        notes=("Tagging only, training only: label-union mixing, the multi-label counterpart of "
               "mixup (xval.tasks.tagging.mixing). Every epoch, this share of each batch's rows "
               "gets another row of the batch (the fold's training items only) added at a gain "
               "of -10 to 0 dB, the sum scaled back by 1 + gain (as a mixture is "
               "peak-normalised), and the labels of both rows; validation and test rows are "
               "never mixed. It replaces mixup: a default mixup_alpha is dropped, a mixup_alpha "
               "the instance names is refused."))
