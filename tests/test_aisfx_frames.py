"""aisfx at frame resolution (`encoder = aisfx_frames`, issue 66): the network's time axis
kept, passes interleaved, frames on the detection grid; a detection store and `init
--annotations --encoders` on them; block encoders refused for detection."""

import json
import os

import numpy as np
import pytest

from preprocessing.features import encoders
from preprocessing.features import pretrained as pt
from preprocessing.store import FeatureStore
from tests.conftest import run_script, write_config
from xval.cli.main import main
from xval.cli.scripts import load_experiment
from xval.core.errors import ConfigurationError

pytest.importorskip("torch")
SR = 44100


def _require_aisfx():
    if encoders.installed("aisfx"):
        return
    if os.environ.get("XVAL_REQUIRE_ENCODERS"):
        pytest.fail("aisfx is not installed but XVAL_REQUIRE_ENCODERS is set: "
                    f"{encoders.BUILT_IN['aisfx'].install}")
    pytest.skip(f"aisfx is not installed: {encoders.BUILT_IN['aisfx'].install}")


@pytest.fixture
def frames_encoder():
    _require_aisfx()
    return pt.load_encoder("aisfx_frames", None, "cpu")


def test_frame_counts_are_the_networks_and_bad_hops_are_refused(frames_encoder):
    from architectures.encoders import build_encoder
    from architectures.encoders.aisfx import n_frames

    rng = np.random.default_rng(0)
    for n in (5120, int(0.5 * SR), int(2.7 * SR)):  # 5,120: the shortest that gives a frame
        y = rng.normal(size=(1, n)).astype(np.float32) * 0.1
        for hop in frames_encoder.HOPS:
            model = build_encoder("aisfx_frames", n, hop_length=hop)
            out = model.predict_on_batch(y[..., None])
            assert out.shape == (1, frames_encoder.frames(n, hop), 512), (n, hop)
    assert frames_encoder.frames(5120, 4096) == 1
    for frames in (frames_encoder.frames, n_frames):
        with pytest.raises(ConfigurationError, match=r"shorter than one frame.*>= 0\.12"):
            frames(5119, 4096 if frames is frames_encoder.frames else 2)
    with pytest.raises(ValueError, match="hop_length=3000: aisfx_frames gives a frame every"):
        build_encoder("aisfx_frames", SR, hop_length=3000)
    for rate, hop, pool in ((SR, 3000, 1), (16000, 4096, 1), (SR, 4096, 2)):
        with pytest.raises(ConfigurationError, match="hop_length=4096 .93 ms"):
            frames_encoder.check_hop(rate, hop, pool)


def test_passes_interleave_and_frames_sit_on_the_grid(frames_encoder):
    """Four passes hold the two of the hop twice as long (shift and stitch), and the frames
    that answer a 50 ms burst are centred on its time within one hop of 23 ms (without
    the lead frames they would be 2 hops early)."""
    rng = np.random.default_rng(1)
    base = (rng.normal(size=4 * SR) * 1e-3).astype(np.float32)
    base[-1] = 2.0  # the peak, so that a burst does not rescale the segment
    coarse = pt.pretrained(base, sample_rate=SR, hop_length=4096, encoder="aisfx_frames")
    fine = pt.pretrained(base, sample_rate=SR, hop_length=2048, encoder="aisfx_frames")
    np.testing.assert_array_equal(fine[::2][:len(coarse)], coarse)
    silent = pt.pretrained(base, sample_rate=SR, hop_length=1024, encoder="aisfx_frames")
    for t in (1.0, 2.33):
        y = base.copy()
        y[int(t * SR):int(t * SR) + SR // 20] += 0.3 * rng.normal(size=SR // 20)
        change = np.abs(pt.pretrained(y, sample_rate=SR, hop_length=1024,
                                      encoder="aisfx_frames") - silent).mean(1)
        centre = (change * np.arange(len(change))).sum() / change.sum()
        assert centre == pytest.approx((t + 0.025) * SR / 1024, abs=1.0)


def test_frame_mode_saves_and_loads(frames_encoder, tmp_path):
    import keras

    from architectures.encoders import aisfx_encoder

    model = aisfx_encoder(SR, shifts=2)
    path = tmp_path / "frames.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    y = np.random.default_rng(2).normal(size=(1, SR, 1)).astype(np.float32)
    assert loaded.get_layer("aisfx_network").shifts == 2
    np.testing.assert_allclose(loaded.predict_on_batch(y), model.predict_on_batch(y),
                               atol=1e-5)


def test_init_with_a_frame_encoder_writes_a_pretrained_detector(frames_encoder, scenes,
                                                               tmp_path, capsys):
    project = tmp_path / "project"
    project.mkdir()
    assert main(["init", str(scenes), "--annotations", str(scenes / "annotations.csv"),
                 "--items", str(scenes / "items.csv"), "--encoders", "aisfx_frames",
                 "--project", str(project), "--no-progress"]) == 0
    assert "Ready." in capsys.readouterr().out
    store = FeatureStore(project / "data" / "scenes")
    params = json.loads((store.path / "dataset.json").read_text())["feature_params"]
    # The encoder's rate and frames; the detection windows (not the encoder's segments).
    assert (params["feature"], params["encoder"]) == ("pretrained", "aisfx_frames")
    assert (params["sample_rate"], params["hop_length"]) == (SR, 4096)
    assert (params["segment_seconds"], params["segment_hop_seconds"]) == (5.0, 5.0)
    targets = np.load(store.path / "frame_targets.npy")
    assert list(store.info.feature_shape) == [frames_encoder.frames(5 * SR), 512]
    assert targets.shape[1] == store.info.feature_shape[0] and targets.any()
    assert "--encoders aisfx_frames" in store.info.source
    experiment = load_experiment(project / "experiments" / "scenes.py")
    assert experiment[1]["architecture"] == "pretrained_detector"
    assert experiment[1]["reshaping_type"] == "rnn"
    # It trains, and detect reads a new recording through the encoder as the store did.
    proc = run_script(project / "experiments" / "scenes.py", "1", "1", "--set", "epochs=2",
                      "-q")
    assert proc.returncode == 0, proc.stderr[-3000:]
    instance = project / "results" / "scenes" / "experiment_1" / "instance_1"
    assert json.loads((instance / "fold_0.json").read_text())["status"] == "ok"
    wav = sorted(scenes.glob("*.wav"))[0]
    assert main(["detect", str(instance), str(wav), "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "file,onset_s,offset_s,label"


@pytest.mark.parametrize("command", ["init", "preprocessing"])
def test_a_block_encoder_is_refused_for_detection(scenes, tmp_path, capsys, command):
    _require_aisfx()
    project = tmp_path / "project"
    project.mkdir()
    annotations = ["--annotations", str(scenes / "annotations.csv")]
    if command == "init":
        code = main(["init", str(scenes), *annotations, "--encoders", "aisfx",
                     "--project", str(project)])
    else:
        from xval.cli.preprocess import main as preprocess

        code = preprocess(["detection", str(scenes), *annotations, "--encoders", "aisfx",
                           "--out", str(project / "data" / "scenes"),
                           "--config", str(write_config(tmp_path))])
    assert code == 2
    err = capsys.readouterr().err
    assert "1.16 s apart" in err and "aisfx_frames" in err, err
    assert len(err.strip().splitlines()) == 1
    assert not any(project.iterdir())


def test_a_mel_hop_beyond_the_collar_and_a_pooled_frame_encoder_are_refused():
    from preprocessing.detection import check_frame_hop

    check_frame_hop(3200, 16000)  # 200 ms: the collar itself is enough
    with pytest.raises(ConfigurationError, match="0.25 s apart.*hop_length of at most 3200"):
        check_frame_hop(4000, 16000)
    with pytest.raises(ConfigurationError, match="lower frame_pool to at most 20"):
        check_frame_hop(5120, 16000, "resemblyzer", frame_pool=32)


def test_init_of_clips_refuses_aisfx_frames(tmp_path, capsys):
    audio = tmp_path / "clips"
    audio.mkdir()
    assert main(["init", str(audio), "--encoders", "aisfx_frames",
                 "--project", str(tmp_path)]) == 2
    assert "for clips use --encoders aisfx" in capsys.readouterr().err
