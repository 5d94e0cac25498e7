"""Speaker splits and few-shot lists: nested, disjoint, deterministic, exclusions reported; subsets stay valid."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data_prep"))
import splits  # noqa: E402

from speechmeta.data.cmvn import load_cmvn  # noqa: E402
from speechmeta.data.compute_feats import compute_feats  # noqa: E402
from speechmeta.data.datadir import DataDir, validate_data_dir  # noqa: E402
from speechmeta.data.dataset import check_fbank_config  # noqa: E402
from speechmeta.data.fbank import FbankConfig  # noqa: E402
from speechmeta.data.feats_store import FeatsReader  # noqa: E402
from speechmeta.data.subset import subset_data_dir  # noqa: E402


def read_lists(path: Path) -> dict[str, list[str]]:
    return {line.split()[0]: line.split()[1:] for line in path.read_text().splitlines()}


def test_fewshot_lists_nested_disjoint_deterministic(make_data_dir, tmp_path):
    d = make_data_dir(spks=3, utts=16)
    out = tmp_path / "fs"
    assert splits.write_fewshot(d, out, [1, 3, 5, 10], [0, 1]) == []
    for seed in (0, 1):
        test = read_lists(out / f"test.seed{seed}")
        supports = {k: read_lists(out / f"support.k{k}.seed{seed}") for k in (1, 3, 5, 10)}
        for spk in ("spk0", "spk1", "spk2"):
            for small, big in ((1, 3), (3, 5), (5, 10)):
                assert supports[big][spk][:small] == supports[small][spk]
            assert len(supports[10][spk]) == 10 and set(supports[10][spk]).isdisjoint(test[spk])
            assert len(test[spk]) == 6
    assert read_lists(out / "support.k5.seed0") != read_lists(out / "support.k5.seed1")
    before = {p.name: p.read_text() for p in out.iterdir()}
    splits.write_fewshot(d, out, [1, 3, 5, 10], [0, 1])  # same inputs: the same files, accepted
    assert {p.name: p.read_text() for p in out.iterdir()} == before


def test_small_speakers_are_excluded_and_reported(make_data_dir, tmp_path):
    d = make_data_dir(spks=2, utts=9)
    excluded = splits.write_fewshot(d, tmp_path / "fs", [1, 3, 5], [0], min_test=5)
    assert excluded == [f"seed 0: spk{i} 5 only 9 utterances, need 5 support + 5 test" for i in (0, 1)]
    assert not (tmp_path / "fs" / "support.k5.seed0").read_text()
    test = read_lists(tmp_path / "fs" / "test.seed0")
    assert all(len(t) == 6 for t in test.values())  # the pool is K=3, test the other 6, shared by K=1 and K=3


def test_existing_split_files_are_never_overwritten(make_data_dir, tmp_path):
    d = make_data_dir(spks=2, utts=12)
    splits.write_fewshot(d, tmp_path / "fs", [1, 3], [0])
    with pytest.raises(FileExistsError, match="exists with other content"):
        splits.write_fewshot(d, tmp_path / "fs", [1, 3], [0], max_test=2)


def test_heldout_speakers_balanced(make_data_dir):
    d = make_data_dir(spks=8, utts=1)
    (d / "spk2age").write_text("".join(f"spk{i} {8 + 3 * i}\n" for i in range(8)))  # ages 8..29: 4 below 18
    data = DataDir.load(d)
    held = splits.heldout_speakers(data, 4, seed=0, balance_by="spk2age:18")
    ages = {f"spk{i}": 8 + 3 * i for i in range(8)}
    assert len(held) == 4 and sum(ages[s] < 18 for s in held) == 2
    assert held == splits.heldout_speakers(data, 4, seed=0, balance_by="spk2age:18")


def test_subset_keeps_paths_features_and_cmvn(make_data_dir, tmp_path):
    d = make_data_dir(spks=3, utts=2)
    wav = [line.split() for line in (d / "wav.scp").read_text().splitlines()]
    (d / "wav.scp").write_text("".join(f"{u} {os.path.relpath(p, d)}\n" for u, p in wav))  # relative paths
    compute_feats(d, progress=False)
    sub = subset_data_dir(d, tmp_path / "deeper" / "sub", ["spk0", "spk2"])
    assert validate_data_dir(sub) == []
    data = DataDir.load(sub)
    assert data.spks == ["spk0", "spk2"] and len(data.utts) == 4
    np.testing.assert_array_equal(FeatsReader(sub)["spk2-utt1"], FeatsReader(d)["spk2-utt1"])
    g, spk = load_cmvn(sub / "cmvn.npz")
    np.testing.assert_allclose(g, spk["spk0"] + spk["spk2"])
    check_fbank_config(sub, FbankConfig())  # the features' config goes with them: another one is still refused
    with pytest.raises(ValueError, match="another filterbank"):
        check_fbank_config(sub, FbankConfig(num_mel_bins=40))
    with pytest.raises(ValueError, match="speaker.*not in"):
        subset_data_dir(d, tmp_path / "x", ["nobody"])
    for name in ("feats.scp", "utt2num_frames", "cmvn.npz"):  # a subset again, of a dir without features:
        (d / name).unlink()                                     # nothing of the earlier subset's features stays
    subset_data_dir(d, sub, ["spk1"])
    assert sorted(p.name for p in sub.iterdir() if p.is_file()) == ["spk2utt", "text", "utt2spk", "wav.scp"]
    assert not (sub / "fbank" / "conf.json").exists() and DataDir.load(sub).spks == ["spk1"]
    with pytest.raises(ValueError, match="the source data dir itself"):
        subset_data_dir(sub, sub, ["spk1"])
    assert DataDir.load(sub).spks == ["spk1"]


def test_subset_of_a_linked_data_dir_finds_its_audio(make_data_dir, tmp_path):
    # The synth recipe's layout: data/train -> corpus/train, whose wav.scp reaches corpus/wav by `../wav/...`. The
    # system resolves that `..` where the link points; a subset written beside the link must point there too.
    corpus = tmp_path / "data" / "corpus"
    src = make_data_dir(spks=2, utts=2, name="src")
    (corpus / "wav").mkdir(parents=True)
    lines = []
    for line in (src / "wav.scp").read_text().splitlines():
        utt, path = line.split()
        os.replace(path, corpus / "wav" / f"{utt}.wav")
        lines.append(f"{utt} ../wav/{utt}.wav\n")
    os.replace(src, corpus / "train")
    (corpus / "train" / "wav.scp").write_text("".join(lines))
    compute_feats(corpus / "train", progress=False)
    (tmp_path / "data" / "train").symlink_to("corpus/train")
    sub = subset_data_dir(tmp_path / "data" / "train", tmp_path / "data" / "train_base", ["spk1"])
    assert [p for p in validate_data_dir(sub) if p.level == "error"] == []  # audio found
    assert (sub / "wav.scp").read_text().split()[1] == "../corpus/wav/spk1-utt0.wav"
    np.testing.assert_array_equal(FeatsReader(sub)["spk1-utt1"], FeatsReader(corpus / "train")["spk1-utt1"])
