"""A store built in a forked child beside another (`xval.cli.init_stores`)."""

import pytest

from tests.conftest import tiny_store
from xval.cli.init_stores import BuildBeside, can_build_beside
from xval.core.errors import DatasetError, XvalError

pytestmark = pytest.mark.skipif(not can_build_beside(),
                                reason="needs fork, two cores and no framework loaded")


def test_build_beside_returns_the_store_the_child_wrote(tmp_path):
    def build():
        store = tiny_store(tmp_path, name="beside")
        return store, {"rows": len(store), "shape": tuple(store.features.shape)}

    store, summary = BuildBeside(build).result(tmp_path / "beside")
    assert summary["rows"] == len(store) > 0
    assert summary["shape"] == list(store.features.shape)  # back through JSON


def test_build_beside_raises_the_childs_error_as_its_class(tmp_path):
    def build():
        raise DatasetError(f"{tmp_path}: no usable audio")

    with pytest.raises(DatasetError, match="no usable audio"):
        BuildBeside(build).result(tmp_path / "none")


def test_build_beside_names_an_unexpected_error(tmp_path):
    def build():
        raise KeyError("segment_seconds")

    with pytest.raises(XvalError, match="building the store failed: KeyError"):
        BuildBeside(build).result(tmp_path / "none")
