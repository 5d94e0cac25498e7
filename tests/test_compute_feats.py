"""compute-feats: stored features round-trip, CMVN stats match numpy, bad audio, resume, restart, nj."""

from __future__ import annotations

import json

import numpy as np
import pytest

from speechmeta.data.audio import AudioError, load_audio
from speechmeta.data.cmvn import load_cmvn
from speechmeta.data.compute_feats import compute_feats
from speechmeta.data.datadir import DataDir
from speechmeta.data.fbank import FbankConfig, fbank
from speechmeta.data.feats_store import FeatsReader


def test_store_round_trips_and_cmvn_matches_numpy(make_data_dir):
    d = make_data_dir(spks=3, utts=4, sample_rate=8000)
    summary = compute_feats(d, progress=False)
    data, reader = DataDir.load(d), FeatsReader(d)
    assert summary.utts == len(reader) == 12 and summary.bad == []
    direct = {u: fbank(load_audio(data.audio(u).path, 16000)) for u in data.utts}
    for utt in data.utts:
        np.testing.assert_array_equal(reader[utt], direct[utt])
    num_frames = dict(line.split() for line in (d / "utt2num_frames").read_text().splitlines())
    assert {u: int(n) for u, n in num_frames.items()} == {u: len(f) for u, f in direct.items()}

    global_stats, spk_stats = load_cmvn(d / "cmvn.npz")
    everything = np.concatenate(list(direct.values())).astype(np.float64)
    np.testing.assert_allclose(global_stats[0, :-1], everything.sum(0), rtol=1e-9)
    np.testing.assert_allclose(global_stats[1, :-1], (everything ** 2).sum(0), rtol=1e-9)
    assert global_stats[0, -1] == len(everything) == summary.frames
    assert sorted(spk_stats) == ["spk0", "spk1", "spk2"]
    spk1 = np.concatenate([direct[u] for u in data.spk2utt["spk1"]]).astype(np.float64)
    np.testing.assert_allclose(spk_stats["spk1"][0, :-1] / spk_stats["spk1"][0, -1], spk1.mean(0), rtol=1e-9)


def test_random_access_is_a_memory_mapped_view(make_data_dir):
    d = make_data_dir()
    compute_feats(d, progress=False)
    feats = FeatsReader(d)["spk1-utt2"]
    assert isinstance(feats.base, np.memmap) or isinstance(getattr(feats.base, "base", None), np.memmap)
    assert not feats.flags.writeable


def test_bad_audio_stops_with_the_utterance_or_is_skipped_and_listed(make_data_dir):
    d = make_data_dir()
    bad = DataDir.load(d).audio("spk1-utt1").path
    bad.write_bytes(b"")
    with pytest.raises(AudioError, match=f"utterance 'spk1-utt1': {bad}: empty file"):
        compute_feats(d, progress=False)
    summary = compute_feats(d, skip_bad=True, progress=False)
    assert summary.utts == 5 and [b[0] for b in summary.bad] == ["spk1-utt1"]
    assert (d / "bad_utts.txt").read_text() == f"spk1-utt1\t{bad}\tempty file (0 bytes)\n"
    assert "spk1-utt1" not in FeatsReader(d)


def test_too_short_for_one_frame_is_bad_audio(make_data_dir):
    from conftest import write_wav

    d = make_data_dir()
    write_wav(DataDir.load(d).audio("spk0-utt0").path, np.zeros(200, dtype=np.float32))
    with pytest.raises(AudioError, match="too short: 12 ms, less than one 25 ms window"):
        compute_feats(d, progress=False)


def test_interrupted_run_resumes_and_ends_identical(make_data_dir, monkeypatch):
    d = make_data_dir(spks=4, utts=6)
    compute_feats(d, progress=False)
    reference = {u: np.array(f) for u, f in ((u, FeatsReader(d)[u]) for u in FeatsReader(d).keys())}
    files_before = sorted(p.name for p in (d / "fbank").iterdir())

    # Simulate a kill: two chunks unfinished (their index missing), a temp file left behind.
    (d / "fbank" / "raw_fbank.1.json").unlink()
    (d / "fbank" / "raw_fbank.2.json").unlink()
    (d / "fbank" / ".raw_fbank.2.npy.abc.tmp").write_bytes(b"partial")
    summary = compute_feats(d, progress=False)
    assert summary.chunks_reused == summary.chunks - 2
    assert sorted(p.name for p in (d / "fbank").iterdir()) == files_before
    reader = FeatsReader(d)
    for utt, feats in reference.items():
        np.testing.assert_array_equal(reader[utt], feats)


def test_changed_config_restarts_cleanly(make_data_dir):
    d = make_data_dir()
    compute_feats(d, progress=False)
    summary = compute_feats(d, FbankConfig(num_mel_bins=40), progress=False)
    assert summary.chunks_reused == 0
    assert FeatsReader(d)["spk0-utt0"].shape[1] == 40
    assert json.loads((d / "fbank" / "conf.json").read_text())["fbank"]["num_mel_bins"] == 40


def test_parallel_jobs_give_the_same_features(make_data_dir, tmp_path, monkeypatch):
    d1, d2, d3 = (make_data_dir(utts=9, name=name) for name in "abc")  # 18 utterances: 3 chunks
    assert compute_feats(d1, progress=False).jobs == 1
    assert compute_feats(d3, nj=2, progress=False).jobs == 1  # too little audio to pay for starting a process
    monkeypatch.setattr("speechmeta.data.compute_feats.JOB_START_SECONDS", 0.0)
    assert compute_feats(d2, nj=2, progress=False).jobs == 2  # the first chunk here, the other two in two jobs
    r1, r2 = FeatsReader(d1), FeatsReader(d2)
    assert r1.keys() == r2.keys()
    for utt in r1.keys():
        np.testing.assert_array_equal(r1[utt], r2[utt])


def test_features_of_another_filterbank_config_are_refused_by_name(make_data_dir):
    """A model made for 10 ms frames must not silently read 5 ms ones (a recipe whose conf sets fbank.* but whose
    features were computed with the defaults, or the reverse)."""
    from speechmeta.data.dataset import UttData
    from speechmeta.data.tokenizer import CharTokenizer

    d = make_data_dir(spks=1, utts=2)
    compute_feats(d, FbankConfig(frame_shift_ms=5.0), progress=False)
    tokenizer = CharTokenizer.build(DataDir.load(d).text.values())
    assert len(UttData(d, tokenizer, fbank=FbankConfig(frame_shift_ms=5.0)).utts) == 2
    with pytest.raises(ValueError, match=r"fbank.frame_shift_ms=5.0 in the features, 10.0 in the model's config"):
        UttData(d, tokenizer, fbank=FbankConfig())


def test_computing_in_process_leaves_the_callers_threads(make_data_dir):
    """`speechmeta adapt` computes a data dir's features itself, then adapts: it must still have all its threads."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        compute_feats(make_data_dir(), progress=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
