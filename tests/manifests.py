"""Result records written by hand in tests, as the recorder writes them.

The results reader refuses a record without its format or its seal, and a `folds.json`
whose recorded hash does not match its folds (it was edited after it was written), so a
test that writes one by hand records what the planner and the recorder would.
"""

import json

from xval.core.hashing import json_digest, seal
from xval.core.records import FORMAT_VERSION


def record_text(data):
    """The text of a result record holding `data`, with the format and the seal the results
    store writes (`ResultsStore.write`)."""
    return json.dumps(seal({**data, "format": data.get("format", FORMAT_VERSION)}))


def manifest_text(folds, splitter="by hand", dataset_hash=None):
    """The text of a `folds.json` holding `folds`, its hash recorded as the planner does.

    Args:
        folds: list of `{"train": [...], "val": [...], "test": [...]}` dicts.
        splitter: the splitter's description.
        dataset_hash: the store's content hash, or `None`.

    Returns:
        The JSON text.
    """
    manifest = {"splitter": splitter, "dataset_hash": dataset_hash, "folds": folds}
    return record_text({**manifest, "hash": json_digest(manifest)})


def params_text(instance, params, **extra):
    """The text of a `params.json` holding `params`, its hash recorded as the recorder does
    (the reader does not believe the folds of an instance whose parameters were edited).

    Args:
        instance: the instance number.
        params: the parameters.
        **extra: other entries (`task_type`, ...).

    Returns:
        The JSON text.
    """
    from xval.config.params import params_hash

    return record_text({"instance": instance, "hash": params_hash(params), "params": params,
                        **extra})
