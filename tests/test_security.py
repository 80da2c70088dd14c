"""No code runs from data: a file in a results folder or a store is read as data, never run
(docs/reliability.md, "Loaders"). Each test hands a loader a crafted file that would run a
command if it were trusted, and checks that the command never ran."""

import io
import json
import zipfile

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from xval.core.errors import ConfigurationError


def _skops(schema_of):
    """A skops file whose schema is `schema_of(legit_schema)` (the arrays of a real one)."""
    import skops.io as sio

    rng = np.random.default_rng(0)
    legit = sio.dumps(LogisticRegression().fit(rng.normal(size=(20, 3)),
                                               rng.integers(0, 2, 20)))
    source = zipfile.ZipFile(io.BytesIO(legit))
    schema = json.loads(source.read("schema.json"))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name in source.namelist():
            if name != "schema.json":
                z.writestr(name, source.read(name))
        z.writestr("schema.json", json.dumps(schema_of(schema)))
    return out.getvalue()


def _calling(function, argument):
    """A schema node that calls `builtins.<function>(argument)` when loaded."""
    text = {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode",
            "content": json.dumps(argument), "is_json": True}
    return {"__class__": function, "__module__": "builtins",
            "__loader__": "ConstructorFromReduceNode",
            "content": {"__class__": "tuple", "__module__": "builtins",
                        "__loader__": "TupleNode", "content": [text]}}


def _eval_file(tmp_path, marker):
    command = f"__import__('os').system('touch {marker}')"
    return _skops(lambda legit: {**_calling("eval", command), "protocol": legit["protocol"],
                                 "_skops_version": legit["_skops_version"]})


def test_embedding_classifier_load_refuses_a_file_that_calls_eval(tmp_path):
    from xval.training.embeddings import load_classifier

    marker = tmp_path / "pwned"
    path = tmp_path / "fold_0.skops"
    path.write_bytes(_eval_file(tmp_path, marker))
    with pytest.raises(ConfigurationError, match="builtins.eval"):
        load_classifier(path)
    assert not marker.exists()


def test_embedding_classifier_load_refuses_a_hidden_call_inside_a_real_pipeline(tmp_path):
    """The call sits in an attribute of a real classifier: every node is checked."""
    from xval.training.embeddings import load_classifier

    marker = tmp_path / "pwned"

    def hide(legit):
        legit["content"]["content"]["C"] = _calling(
            "exec", f"__import__('os').system('touch {marker}')")
        return legit

    path = tmp_path / "fold_0.skops"
    path.write_bytes(_skops(hide))
    with pytest.raises(ConfigurationError, match="builtins.exec"):
        load_classifier(path)
    assert not marker.exists()


def test_embedding_classifier_load_reads_what_the_project_writes(tmp_path):
    from xval.training.embeddings import dumps, load_classifier, make_classifier

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 5)).astype(np.float32), rng.integers(0, 3, 40)
    for kind in ("svm", "logreg"):
        pipeline = make_classifier(kind, 1.0).fit(x, y)
        path = tmp_path / f"{kind}.skops"
        path.write_bytes(dumps(pipeline))
        assert np.array_equal(load_classifier(path).predict(x), pipeline.predict(x))


# The command line (`predict --embedding-classifier` on a results folder holding such a
# file) is tested on a real trained instance in test_embeddings.py
# (test_autoencoder_codes_svm_workbook_and_predict).
