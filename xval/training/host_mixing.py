"""Training batches mixed on the host by the task's mixer (`Targets.mixer`: detection's
event mixing), gathered as numpy arrays and copied to the device when asked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xval.training import devices


def mixed_batches(batches: Any, mixer: Callable[..., Any], placement: str) -> Any:
    """A `keras.utils.PyDataset` serving `batches` (numpy batches of the training rows,
    `make_batches` with `placement=HOST`) mixed by `mixer(x, y, epoch, batch)`, copied to
    the device when `placement` is `PINNED`.

    Args:
        batches: the training batches, gathered on the host.
        mixer: the fold's mixer.
        placement: `HOST` or `PINNED` (`xval.training.devices`).
    """
    import keras  # noqa: PLC0415  (Keras: only once the backend is set)

    class _Mixed(keras.utils.PyDataset):
        def __init__(self) -> None:
            workers = int(getattr(batches, "workers", 1) or 1)
            super().__init__(**({"workers": workers, "use_multiprocessing": False}
                                if workers > 1 else {}))
            self.epoch = 0

        def __len__(self) -> int:
            return len(batches)

        def __getitem__(self, index: int) -> tuple[Any, ...]:
            batch = batches[index]
            x, y = mixer(batch[0], batch[1], self.epoch, index)
            out = (x, y, *batch[2:])
            return tuple(devices.to_device(a) for a in out) \
                if placement == devices.PINNED else out

        def on_epoch_end(self) -> None:
            self.epoch += 1
            batches.on_epoch_end()

    return _Mixed()
