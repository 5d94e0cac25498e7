"""Combining data dirs (Kaldi's combine_data.sh): paths, features, CMVN sums, optional files, refusals."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from speechmeta.cli import main
from speechmeta.data.cmvn import load_cmvn
from speechmeta.data.combine import combine_data_dirs
from speechmeta.data.compute_feats import compute_feats
from speechmeta.data.datadir import DataDir, read_table, validate_data_dir, write_data_dir
from speechmeta.data.dataset import check_fbank_config
from speechmeta.data.fbank import FbankConfig
from speechmeta.data.feats_store import FeatsReader


def renamed(src: Path, dst: Path, tag: str) -> Path:
    """A copy of data dir `src` whose utterance ids carry `tag` (same speakers, same audio, relative paths)."""
    data = DataDir.load(src)
    new = {u: u.replace("-utt", f"-{tag}utt") for u in data.utts}
    write_data_dir(dst, {new[u]: os.path.relpath(data.wav[u], dst) for u in data.utts},
                   {new[u]: data.text[u] for u in data.utts}, {new[u]: data.utt2spk[u] for u in data.utts})
    return dst


def test_combined_dir_reads_the_sources_features_and_sums_cmvn(make_data_dir, tmp_path):
    a = make_data_dir(spks=2, utts=2, name="a")
    b = renamed(make_data_dir(spks=3, utts=1, name="b0"), tmp_path / "b", "x")  # spk0, spk1 in both; spk2 only in b
    (a / "spk2gender").write_text("spk0 f\nspk1 m\n")  # only one source has it: left out, and said so
    for d in (a, b):
        compute_feats(d, progress=False)
    out = tmp_path / "deeper" / "both"
    notes = combine_data_dirs([a, b], out)
    assert notes == [f"spk2gender left out: only {a} of the sources have it"]
    assert validate_data_dir(out) == []
    data = DataDir.load(out)
    assert data.spks == ["spk0", "spk1", "spk2"] and len(data.utts) == 7
    assert data.spk2utt["spk0"] == ["spk0-utt0", "spk0-utt1", "spk0-xutt0"]
    assert data.wav["spk2-xutt0"].resolve() == DataDir.load(b).wav["spk2-xutt0"].resolve()
    np.testing.assert_array_equal(FeatsReader(out)["spk0-xutt0"], FeatsReader(b)["spk0-xutt0"])
    np.testing.assert_array_equal(FeatsReader(out)["spk1-utt1"], FeatsReader(a)["spk1-utt1"])
    assert not (out / "spk2gender").exists()
    g, spk = load_cmvn(out / "cmvn.npz")
    _, spk_a = load_cmvn(a / "cmvn.npz")
    _, spk_b = load_cmvn(b / "cmvn.npz")
    np.testing.assert_allclose(spk["spk0"], spk_a["spk0"] + spk_b["spk0"])
    np.testing.assert_allclose(spk["spk2"], spk_b["spk2"])
    np.testing.assert_allclose(g, load_cmvn(a / "cmvn.npz")[0] + load_cmvn(b / "cmvn.npz")[0])
    check_fbank_config(out, FbankConfig())  # the features' config is recorded: another one is refused
    with pytest.raises(ValueError, match="num_mel_bins=80 in the features, 40"):
        check_fbank_config(out, FbankConfig(num_mel_bins=40))
    assert main(["combine-data", str(tmp_path / "cli"), str(a), str(b)]) == 0
    assert read_table(tmp_path / "cli" / "feats.scp").first().keys() == read_table(out / "feats.scp").first().keys()
    (b / "feats.scp").unlink()  # combined again without features: the earlier feats.scp and cmvn.npz must go
    assert f"feats.scp left out: only {a} of the sources have it" in combine_data_dirs([a, b], out)
    assert not (out / "feats.scp").exists()
    assert not (out / "fbank" / "conf.json").exists()  # nor a record of features the dir no longer has


def test_refusals_name_the_cause(make_data_dir, tmp_path):
    a = make_data_dir(spks=1, utts=2, name="a")
    same_ids = make_data_dir(spks=1, utts=1, name="b")
    with pytest.raises(ValueError, match=f"'spk0-utt0' is in both {a} and {same_ids}"):
        combine_data_dirs([a, same_ids], tmp_path / "out")
    with pytest.raises(ValueError, match="at least two"):
        combine_data_dirs([a], tmp_path / "out")
    with pytest.raises(ValueError, match="one of the sources"):
        combine_data_dirs([a, same_ids], a)
    other = renamed(a, tmp_path / "c", "x")
    compute_feats(a, progress=False)
    compute_feats(other, FbankConfig(num_mel_bins=40), progress=False)
    with pytest.raises(ValueError, match="different filterbank configs"):
        combine_data_dirs([a, other], tmp_path / "out")
