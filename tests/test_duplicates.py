"""Files that hold the same audio under two items (issue 56): the duplicate check
(`preprocessing.duplicates`) on real decoded audio, where a
user meets it (`python -m preprocessing check`, `python -m xval init`, the build commands,
the dry run's data checks, `[data] duplicates = error`), and the cases at the edges (two
files, a silent file, a corrupt file). Audio is made with numpy and written with
soundfile; the tests marked `realdata` read ../shared/datasets."""

import json
import shutil

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from preprocessing.build import build_store, feature_params
from preprocessing.duplicates import fingerprints as dup
from preprocessing.duplicates.check import (
    DuplicateCheck,
    FingerprintSpool,
    check_files,
    cross_item_duplicates,
    duplicates_per_fold,
    item_groups,
    report_lines,
)
from preprocessing.duplicates.folds import duplicate_lines, refuse_duplicates
from preprocessing.duplicates.store_check import store_check
from preprocessing.parallel import process_pool
from preprocessing.store import FeatureStore, write_store
from tests.conftest import SHARED, python_here, write_config
from xval.config.loader import load_config
from xval.core.errors import DatasetError
from xval.folds import ItemKFold

RATE = 8000


def _sound(rng, seconds=0.8):
    """A sound no other call makes: a chirp between random frequencies, a random envelope,
    and noise."""
    t = np.arange(int(seconds * RATE)) / RATE
    f0, f1 = rng.uniform(150, 1500, 2)
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t ** 2 / (2 * seconds))
    envelope = np.interp(t, np.linspace(0, seconds, 6), rng.uniform(0.1, 1.0, 6))
    y = 0.4 * envelope * (np.sin(phase) + 0.3 * np.sin(2.7 * phase))
    return (y + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


def _folder(root, rng, speakers=("ann", "bob", "cy", "dee"), labels=("yes", "no"), per=2):
    """`root/<label>/<speaker>_<k>.wav`, every file a different sound."""
    for label in labels:
        (root / label).mkdir(parents=True)
        for speaker in speakers:
            for k in range(per):
                sf.write(root / label / f"{speaker}_{k}.wav", _sound(rng), RATE)
    return root


def _plant(root, source="yes/ann_0.wav", copy="yes/dee_9.ogg"):
    """An OGG Vorbis copy of `source`, its first third cut, filed under another speaker."""
    y, sr = sf.read(root / source, dtype="float32")
    sf.write(root / copy, y[len(y) // 3:], sr, format="OGG", subtype="VORBIS")
    return root / copy


ITEM = r"(?P<item>[a-z]+)_\d+"


def _build(audio, tmp_path):
    """`python -m preprocessing folders AUDIO` into `tmp_path/data/speech` (a config.ini
    written there): the store's path and the command's result."""
    write_config(tmp_path)
    store = tmp_path / "data" / "speech"
    built = python_here("-m", "preprocessing", "folders", audio, "--out", store,
                        "--item-pattern", ITEM, "--workers", "1", "--no-progress",
                        cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    return store, built


# -- the method -------------------------------------------------------------------------


def test_similarity_keeps_copies_and_tells_different_sounds_apart(rng):
    y = _sound(rng, 1.0)
    wave = dup.fingerprint(y, RATE).wave
    noisy = y + rng.standard_normal(len(y)).astype(np.float32) * np.sqrt(np.mean(y ** 2) / 100)
    assert dup.similarity(wave, dup.fingerprint(noisy, RATE).wave) == \
        pytest.approx(1 / np.sqrt(1.01), abs=0.003)  # 20 dB SNR, as the docstring says
    trimmed = dup.fingerprint(y[1001:len(y) - 1700], RATE).wave  # a third, off the grid
    assert dup.similarity(wave, trimmed) > 0.99
    resampled = librosa.resample(y, orig_sr=RATE, target_sr=11025)
    assert dup.similarity(wave, dup.fingerprint(resampled, 11025).wave) > 0.99
    assert dup.similarity(wave, -0.1 * wave) == pytest.approx(1.0, abs=1e-6)  # gain, polarity
    assert dup.similarity(wave, dup.fingerprint(_sound(rng, 1.0), RATE).wave) < 0.5
    assert dup.similarity(wave, np.zeros(4000, np.float32)) == 0.0
    assert dup.similarity_db(dup.THRESHOLD) == pytest.approx(9.7, abs=0.05)


def test_find_duplicates_finds_trimmed_and_noisy_copies_among_other_sounds(rng):
    sounds = [_sound(rng) for _ in range(30)]
    noisy = sounds[3] + 0.01 * rng.standard_normal(len(sounds[3])).astype(np.float32)
    copies = [sounds[7][: 2 * len(sounds[7]) // 3], noisy]
    prints = [dup.fingerprint(y, RATE) for y in sounds + copies]
    pairs = dup.find_duplicates(prints)
    assert [(p.first, p.second) for p in pairs] == [(3, 31), (7, 30)]
    assert all(p.similarity >= dup.THRESHOLD for p in pairs)


def _groups_of(pairs, files):
    """The connected groups of files that verified pairs join (label per file)."""
    import scipy.sparse
    import scipy.sparse.csgraph

    edges = np.array([[p.first, p.second] for p in pairs] or np.zeros((0, 2), int))
    graph = scipy.sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])),
                                    shape=(files, files))
    return scipy.sparse.csgraph.connected_components(graph, directed=False)[1]


@pytest.mark.parametrize("copies", ["exact", "near"])
def test_find_duplicates_finds_a_recording_copied_into_more_files_than_a_bucket(rng, copies):
    """Issue 64: a recording copied into 33 files or more (a jingle under every speaker) made
    each of its landmark hashes a stop word (held more than `MAX_BUCKET` times) and the check
    found nothing. Byte copies (the same landmarks) are paired with their first copy; copies
    that differ a little (each with its own gain and noise 80 dB down: most hashes still in
    every copy, and 31 of the 40 were found) are paired with the first postings of each over-full bucket. All 40 copies
    are one group, and no other sound joins it."""
    jingle = _sound(rng)
    others = [_sound(rng) for _ in range(20)]
    copied = [jingle * rng.uniform(0.2, 1.0) + (0.0 if copies == "exact" else 1e-4 * np.sqrt(
        np.mean(jingle ** 2)) * rng.standard_normal(len(jingle))) for _ in range(40)]
    prints = [dup.fingerprint(np.asarray(y, np.float32), RATE) for y in others + copied]
    from preprocessing.duplicates.candidates import MAX_BUCKET

    assert 40 > MAX_BUCKET
    group = _groups_of(dup.find_duplicates(prints), len(prints))
    assert len(set(group[20:])) == 1 and set(group[:20]).isdisjoint(group[20:])


def test_candidates_pair_files_with_the_same_landmarks_and_never_files_without():
    """Files whose landmarks are the same (byte copies) are each paired with the first of
    them and kept out of the index; files without landmarks are not the same file."""
    from preprocessing.duplicates.candidates import Landmarks, indexed_pairs

    a = (np.array([5, 9, 12], np.int64), np.array([0, 3, 7], np.int32))
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int32))
    files = [a, empty, a, empty, (a[0], a[1] + 1), a]  # file 4: the same hashes, later
    pairs = indexed_pairs(Landmarks.from_arrays(*zip(*files)), 5)
    assert {(0, 2), (0, 5)} <= set(map(tuple, pairs.tolist()))
    assert (1, 3) not in set(map(tuple, pairs.tolist()))


def test_candidates_of_an_over_full_bucket_pair_each_file_with_its_first_files(rng):
    """40 files share 50 landmarks at one offset (each hash held 40 times: over-full) and
    each has one of its own, so that no two are the same: each is paired with the bucket's
    first files, in `REPRESENTATIVES * 40` keys a bucket, not 40 ** 2; files sharing only
    stop words at random offsets are not paired."""
    from preprocessing.duplicates.candidates import CROWDED_MATCHES, Landmarks, indexed_pairs

    shared = rng.choice(1 << 30, 50, replace=False)
    times = np.sort(rng.choice(2000, 50, replace=False)).astype(np.int32)
    files = [(np.r_[shared, (1 << 31) + k], np.r_[times + 5 * k, 3000]) for k in range(40)]
    noise = [(rng.choice(shared, CROWDED_MATCHES), rng.choice(2000, CROWDED_MATCHES)
              .astype(np.int32)) for _ in range(40)]  # stop words at random times
    pairs = set(map(tuple, indexed_pairs(Landmarks.from_arrays(*zip(*files, *noise)), 5)
                    .tolist()))
    assert {(0, k) for k in range(1, 40)} <= pairs
    assert not any(b >= 40 for _, b in pairs)


def test_verification_in_two_workers_gives_the_pairs_and_scores_of_one(rng, monkeypatch):
    sounds = [_sound(rng, 0.5) for _ in range(24)]
    copies = [sounds[5][len(sounds[5]) // 4:], -0.5 * sounds[11]]
    prints = [dup.compact(dup.fingerprint(y, RATE)) for y in sounds + copies]
    every = np.array(np.triu_indices(len(prints), 1)).T  # 325 pairs, 2 of them copies
    started = []

    def pool(workers):
        started.append(workers)
        return process_pool(workers)

    monkeypatch.setattr(dup, "process_pool", pool)
    for name in ("POOL_PAIRS", "POOL_PAIRS_FRESH"):  # forked or not, any pairs go to them
        monkeypatch.setattr(dup, name, 2)
    wave = [p.wave for p in prints].__getitem__
    one = dup.similarities(every, wave)
    two = dup.similarities(every, wave, workers=2)
    assert started == [2]  # the pairs went to two workers; this process made `one`
    np.testing.assert_array_equal(two, one)  # bit for bit, not to a tolerance
    assert [tuple(every[k]) for k in np.flatnonzero(two >= dup.THRESHOLD)] == [(5, 24), (11, 25)]
    with FingerprintSpool() as spool:  # the store build's path, on the candidates
        for k, content in enumerate(prints):
            spool.add(f"c{k}", content)
        several = spool.check(workers=2)
        assert started == [2, 2]
        assert several.pairs == spool.check().pairs
        assert [p[:2] for p in several.pairs] == [("c5", "c24"), ("c11", "c25")]


def test_check_record_round_trip_crossings_groups_and_folds():
    check = DuplicateCheck(files=5, pairs=(("a1", "b1", 0.99), ("b1", "c1", 0.97),
                                           ("a1", "a2", 1.0)))
    assert DuplicateCheck.from_dict(json.loads(json.dumps(check.to_dict()))) == check
    with pytest.raises(DatasetError, match="'duplicates' entry cannot be read"):
        DuplicateCheck.from_dict({"method": "x"})
    items = {"a1": "A", "a2": "A", "b1": "B", "c1": "C", "d1": "D"}
    crossing = cross_item_duplicates(check, items)
    assert [(c.first, c.second) for c in crossing] == [("a1", "b1"), ("b1", "c1")]
    assert item_groups(crossing) == [["A", "B", "C"]]
    folds = [{"train": ["B", "D"], "val": ["C"], "test": ["A"]},
             {"train": ["A", "B", "C"], "val": [], "test": ["D"]}]
    assert duplicates_per_fold(crossing, folds) == [1, 0]
    lines = report_lines(check, crossing, {"a1": "x/a1.wav"}, fix="--merge-duplicates")
    assert "2 pair(s) of files hold the same audio under two items" in lines[0]
    assert "x/a1.wav (A) = b1 (B): similarity 0.990" in lines[1]
    assert "{A, B, C}" in lines[-2] and "--merge-duplicates" in lines[-1]


# -- where a user meets it -------------------------------------------------------------------


def test_check_command_lists_writes_csv_and_merges_a_reencoded_copy(tmp_path, rng):
    audio = _folder(tmp_path / "audio", rng)
    _plant(audio)
    store, built = _build(audio, tmp_path)
    assert "1 pair(s) of files hold the same audio under two items" in built.stdout
    proc = python_here("-m", "preprocessing", "check", store, "--csv", tmp_path / "pairs.csv",
                       "--merge-duplicates", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "ann_0.wav (ann) = " in proc.stdout and "dee_9.ogg (dee): similarity 0.9" in proc.stdout
    assert "Merged items ann, dee into one: ann+dee." in proc.stdout
    pairs = pd.read_csv(tmp_path / "pairs.csv")
    assert list(pairs[["first_item", "second_item"]].iloc[0]) == ["ann", "dee"]
    merged = FeatureStore(store)
    merged.verify()  # rewritten whole: its hashes are its own
    items = merged.meta.drop_duplicates("clip").set_index("clip")["item"]
    assert items["yes/ann_0.wav"] == items["yes/dee_9.ogg"] == "ann+dee"
    assert set(merged.meta["item"]) == {"ann+dee", "bob", "cy"}
    assert merged.info.duplicates["merged"] == [["ann", "dee"]]
    for _, test in ItemKFold(3).split(merged.meta, groups=merged.items):
        clips = set(merged.meta["clip"].iloc[test])
        assert ("yes/ann_0.wav" in clips) == ("yes/dee_9.ogg" in clips)  # never split
    again = python_here("-m", "preprocessing", "check", store, cwd=tmp_path)
    assert "no file shares its audio with a file of another item (1 pair(s) share audio " \
           "inside one item)" in again.stdout


def test_init_lists_the_copy_and_merge_duplicates_keeps_it_on_one_side(tmp_path, rng):
    audio = _folder(tmp_path / "audio", rng, speakers=("ann", "bob", "cy", "dee", "eve"))
    _plant(audio)
    project = tmp_path / "project"
    project.mkdir()
    dry = python_here("-m", "xval", "init", audio, "--item-pattern", ITEM, "--encoders",
                      "none", "--no-progress", "--dry-run", cwd=project)
    assert dry.returncode == 0, dry.stderr
    said = " ".join(dry.stdout.split())
    assert "1 pair(s) of files hold the same audio under two items" in said
    assert "--merge-duplicates" in said and not (project / "data").exists()
    proc = python_here("-m", "xval", "init", audio, "--item-pattern", ITEM, "--encoders",
                       "none", "--no-progress", "--merge-duplicates", cwd=project)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    assert "Merged items ann, dee into one: ann+dee" in proc.stdout
    assert "Duplicates: no file holds the audio of a file of another item" in proc.stdout
    store = FeatureStore(project / "data" / "audio")
    assert store.info.duplicates["merged"] == [["ann", "dee"]]
    assert "ann+dee" in set(store.items) and "dee" not in set(store.items)


def test_merge_that_joins_every_item_says_so_and_never_suggests_the_flag_given(tmp_path, rng):
    """Copies that chain every item together (ann = bob, bob = cy): --merge-duplicates
    would leave one item. init and `preprocessing check` say that the merge did it, name
    the group and the fix, never blame the item rule nor suggest the flag already given;
    nothing is written and the store keeps its items."""
    audio = _folder(tmp_path / "audio", rng, speakers=("ann", "bob", "cy"))
    _plant(audio, "yes/ann_0.wav", "yes/bob_9.ogg")
    _plant(audio, "yes/bob_0.wav", "yes/cy_9.ogg")
    project = tmp_path / "project"
    project.mkdir()
    proc = python_here("-m", "xval", "init", audio, "--item-pattern", ITEM, "--encoders",
                       "none", "--no-progress", "--merge-duplicates", cwd=project)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr
    error = proc.stderr.strip()
    assert error.startswith("error: --merge-duplicates left 1 item(s)") and "\n" not in error
    assert "{ann, bob, cy}" in error and "at least 3" in error
    assert "remove the copies" in error and "without --merge-duplicates" in error
    assert "--item-pattern" not in error  # the items were found; the merge joined them
    assert "with `python -m xval init ... --merge-duplicates`" not in proc.stdout
    assert "Merged items" not in proc.stdout and not (project / "data").exists()
    store, _ = _build(audio, tmp_path)
    check = python_here("-m", "preprocessing", "check", store, "--merge-duplicates",
                        cwd=tmp_path)
    assert check.returncode == 2, check.stdout[-2000:] + check.stderr
    assert check.stderr.startswith("error: --merge-duplicates left 1 item(s)")
    assert "{ann, bob, cy}" in check.stderr and "two or more" in check.stderr
    assert f"check {store} --merge-duplicates" not in check.stdout
    assert set(FeatureStore(store).items) == {"ann", "bob", "cy"}  # not rewritten


def test_copies_under_two_labels_are_said_and_never_merged_silently(tmp_path, rng):
    """Issue 64: `--merge-duplicates` merged two items whose copies of one recording carry
    different labels, and the store kept that audio under both labels without a word. The
    listing names the conflict (both files, both labels); each command's merge refuses it,
    writing nothing."""
    audio = _folder(tmp_path / "audio", rng, speakers=("ann", "bob", "cy", "dee", "eve"))
    _plant(audio, "yes/ann_0.wav", "no/dee_9.ogg")  # the copy filed under the other label
    store, built = _build(audio, tmp_path)
    said = " ".join(built.stdout.split())
    assert "Label conflict: 1 pair(s) of these files hold the same audio under two labels" \
        in said and f"{audio / 'yes/ann_0.wav'} (label 'yes') = {audio / 'no/dee_9.ogg'} " \
        "(label 'no'): similarity 0.9" in said
    refusal = (f"error: --merge-duplicates: 1 pair(s) of files hold the same audio under two "
               f"labels: {audio / 'yes/ann_0.wav'} (label 'yes', item ann) = "
               f"{audio / 'no/dee_9.ogg'} (label 'no', item dee); merging their items would "
               "keep that audio under both labels. Nothing was merged or written.")
    check = python_here("-m", "preprocessing", "check", store, "--merge-duplicates",
                        cwd=tmp_path)
    assert check.returncode == 2 and check.stderr.startswith(refusal), check.stderr
    assert set(FeatureStore(store).items) == {"ann", "bob", "cy", "dee", "eve"}  # as it was
    rebuilt = python_here("-m", "preprocessing", "folders", audio, "--out", tmp_path / "m",
                          "--item-pattern", ITEM, "--workers", "1", "--no-progress",
                          "--merge-duplicates", cwd=tmp_path)
    assert rebuilt.returncode == 2 and rebuilt.stderr.startswith(refusal), rebuilt.stderr
    assert not (tmp_path / "m").exists()
    project = tmp_path / "project"
    project.mkdir()
    init = python_here("-m", "xval", "init", audio, "--item-pattern", ITEM, "--encoders",
                       "none", "--no-progress", "--merge-duplicates", cwd=project)
    assert init.returncode == 2, init.stderr  # the pair in the order init read the files
    assert init.stderr.startswith(refusal[:refusal.index(":", 30) + 1]), init.stderr
    for words in (f"{audio / 'yes/ann_0.wav'} (label 'yes', item ann)",
                  f"{audio / 'no/dee_9.ogg'} (label 'no', item dee)",
                  "merging their items would keep that audio under both labels"):
        assert words in init.stderr, init.stderr
    assert "Label conflict" in init.stdout and not (project / "data").exists()


def test_dry_run_line_per_fold_and_duplicates_error_refuses(tmp_path, rng):
    audio = _folder(tmp_path / "audio", rng)
    _plant(audio)
    rows = pd.DataFrame([{"path": str(p), "label": p.parent.name, "item": p.stem.split("_")[0],
                          "clip": f"{p.parent.name}/{p.name}"}
                         for p in sorted(audio.rglob("*.*"))])
    params = feature_params(load_config(None).features)
    store, _ = build_store(rows, tmp_path / "store", params=params, workers=1, progress=False)
    folds = [{"train": ["bob", "cy"], "val": ["dee"], "test": ["ann"]},
             {"train": ["ann", "bob"], "val": ["cy"], "test": ["dee"]},
             {"train": ["ann", "dee"], "val": ["bob"], "test": ["cy"]}]
    (line,) = duplicate_lines(store, folds)
    assert line.startswith("Warning: 1 pair(s) of files hold the same audio under two items")
    assert "per fold: 0: 1, 1: 1, 2: 0" in line and "--merge-duplicates" in line
    # An experiment whose instances read another store of the same files (init's encoder
    # store): the fix merges both, or the two stores would hold other items.
    (line,) = duplicate_lines(store, folds, [store, FeatureStore(store.path)])
    assert line.count("--merge-duplicates") == 1
    other = shutil.copytree(store.path, tmp_path / "store_aisfx")
    (line,) = duplicate_lines(store, folds, [store, FeatureStore(other)])
    assert f"check {store.path} --merge-duplicates && python -m preprocessing check {other} " \
        "--merge-duplicates" in line
    refuse_duplicates(store, load_config(write_config(tmp_path / "warn")).data.duplicates)
    config = load_config(write_config(tmp_path / "strict", data={"duplicates": "error"}))
    with pytest.raises(DatasetError, match=r"1 pair\(s\) of files hold the same audio .*"
                                           r"\[data\] duplicates = error. Merge them"):
        refuse_duplicates(store, config.data.duplicates)


def test_clean_folder_reports_none(tmp_path, rng):
    audio = _folder(tmp_path / "audio", rng)
    rows = pd.DataFrame([{"path": str(p), "clip": str(p.relative_to(audio))}
                         for p in sorted(audio.rglob("*.wav"))])
    check = check_files(rows)
    assert check.files == 16 and check.pairs == () and check.unreadable == ()
    (line,) = report_lines(check, [], {}, fix="")
    assert "of 16 files: no file shares its audio with a file of another item." in line


def test_two_files_a_silent_file_and_a_corrupt_file(tmp_path, rng):
    y = _sound(rng)
    sf.write(tmp_path / "a.wav", y, RATE)
    sf.write(tmp_path / "b.flac", y * 0.5, RATE)  # the same audio, another codec and level
    sf.write(tmp_path / "other.wav", _sound(rng), RATE)
    sf.write(tmp_path / "silent.wav", np.zeros(RATE, np.float32), RATE)
    sf.write(tmp_path / "silent2.wav", np.zeros(RATE, np.float32), RATE)
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x01\x00\x00WAVEjunk" * 10)

    def check(*names):
        return check_files(pd.DataFrame({"path": [str(tmp_path / n) for n in names],
                                          "clip": list(names)}))

    assert [p[:2] for p in check("a.wav", "b.flac").pairs] == [("a.wav", "b.flac")]
    assert check("a.wav", "other.wav").pairs == ()
    assert check("silent.wav", "silent2.wav", "a.wav").pairs == ()  # silence shares nothing
    broken = check("corrupt.wav", "a.wav", "b.flac")
    assert broken.unreadable == ("corrupt.wav",) and broken.files == 2
    assert "(1 could not be read, not checked)" in report_lines(broken, [], {}, fix="")[0]
    assert check("corrupt.wav").files == 0


def test_old_store_is_not_checked_then_checked_from_its_audio(tmp_path, rng):
    old = write_store(tmp_path / "old", np.zeros((2, 3, 4), np.float32),
                      pd.DataFrame({"item": ["a", "a"], "label": ["x", "y"], "clip": ["1", "2"]}))
    assert store_check(old).check is None
    assert "not checked" in duplicate_lines(old, [])[0]
    audio = _folder(tmp_path / "audio", rng, speakers=("ann", "bob", "cy"))
    copy = _plant(audio, copy="yes/cy_9.ogg")
    rows = pd.DataFrame([{"path": str(p), "label": p.parent.name, "item": p.stem.split("_")[0],
                          "clip": f"{p.parent.name}/{p.name}"}
                         for p in sorted(audio.rglob("*.*"))])
    params = feature_params(load_config(None).features)
    built, _ = build_store(rows, tmp_path / "built", params=params, workers=1, progress=False,
                           check_content=False)  # as before the check existed
    assert built.info.duplicates is None
    proc = python_here("-m", "preprocessing", "check", built.path, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "it records none: built before the check existed" in proc.stdout
    assert "1 pair(s) of files hold the same audio" in proc.stdout
    assert FeatureStore(built.path).info.duplicates["pairs"][0][:2] == ["yes/ann_0.wav",
                                                                       "yes/cy_9.ogg"]
    for path in audio.rglob("*.*"):
        path.unlink()
    gone = python_here("-m", "preprocessing", "check", built.path, "--recheck")
    assert gone.returncode == 2 and "none of its 13 audio files can be read" in gone.stderr
    assert copy.name not in gone.stdout


def test_check_command_refuses_a_threshold_without_recheck(tmp_path):
    proc = python_here("-m", "preprocessing", "check", tmp_path, "--threshold", "0.9")
    assert proc.returncode == 2 and "--threshold 0.9 goes with --recheck" in proc.stderr
    bad = python_here("-m", "preprocessing", "check", tmp_path, "--threshold", "2")
    assert bad.returncode == 2 and "expected a similarity in (0, 1]" in bad.stderr


# -- real recordings ------------------------------------------------------------------------


@pytest.mark.realdata
def test_ravdess_ships_two_identical_takes_and_fsdd_copies_are_found():
    ravdess, fsdd = SHARED / "ravdess" / "audio" / "Actor_07", SHARED / "fsdd" / "recordings"
    if not ravdess.is_dir() or not fsdd.is_dir():
        pytest.skip(f"{SHARED} holds no RAVDESS and FSDD recordings")
    files = sorted(ravdess.glob("03-01-03-*.flac"))  # actor 7, happy: 8 takes
    check = check_files(pd.DataFrame({"path": list(map(str, files)),
                                      "clip": [f.name for f in files]}))
    assert [p[:2] for p in check.pairs] == [("03-01-03-01-02-01-07.flac",
                                             "03-01-03-01-02-02-07.flac")]
    takes = sorted(fsdd.glob("0_jackson_*.wav"))[:25]  # one speaker, one digit: hard negatives
    rows = pd.DataFrame({"path": list(map(str, takes)), "clip": [t.name for t in takes]})
    y, sr = sf.read(takes[3], dtype="float32")
    prints = [dup.fingerprint(*sf.read(t, dtype="float32")) for t in takes]
    noisy = y + np.random.default_rng(0).standard_normal(len(y)).astype(np.float32) \
        * np.sqrt(np.mean(y ** 2) / 100)
    prints.append(dup.fingerprint(noisy[len(y) // 6:], sr))  # 20 dB SNR, trimmed
    found = dup.find_duplicates(prints)
    assert [(p.first, p.second) for p in found] == [(3, 25)], rows["clip"].tolist()
