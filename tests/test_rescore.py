"""Two-pass decoding: exact CTC likelihoods of hypotheses, the rescoring rule, weights tuned on dev, the commands."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cli

from speechmeta.data.datadir import DataDir
from speechmeta.data.tokenizer import CharTokenizer
from speechmeta.rescore import rescore, sequence_log_likelihoods, tune


def test_sequence_log_likelihood_sums_every_alignment():
    tokenizer = CharTokenizer.build(["A B"])  # <blk> <unk> <space> A B
    a, space = tokenizer.units.index("A"), tokenizer.units.index("<space>")
    probs = np.array([[0.5, 0.0, 0.1, 0.3, 0.1], [0.2, 0.0, 0.1, 0.6, 0.1], [0.4, 0.0, 0.3, 0.2, 0.1]]) + 1e-12
    log_probs = torch.tensor(np.log(probs / probs.sum(axis=1, keepdims=True)), dtype=torch.float32)
    p = log_probs.exp().double().numpy()
    # "A": every path of 3 frames that collapses to A; "": blanks only; "A A" needs A, space, A and cannot be shorter
    paths_a = [(a, a, a), (a, a, 0), (a, 0, 0), (0, a, a), (0, 0, a), (0, a, 0), (a, 0, a)]
    want_a = sum(math.prod(p[t, c] for t, c in enumerate(path)) for path in paths_a if path != (a, 0, a))
    want_aa = p[0, a] * p[1, space] * p[2, a]
    got = sequence_log_likelihoods(log_probs, tokenizer, ["A", "", "A A", "A B A"])
    assert got[0] == pytest.approx(math.log(want_a), abs=1e-5)
    assert got[1] == pytest.approx(math.log(p[0, 0] * p[1, 0] * p[2, 0]), abs=1e-5)
    assert got[2] == pytest.approx(math.log(want_aa), abs=1e-5)
    assert got[3] == -math.inf  # 5 units in 3 frames
    assert sequence_log_likelihoods(log_probs, tokenizer, [""])[0] == pytest.approx(got[1])


def test_rescore_weighs_the_two_heads_the_lm_and_the_word_count():
    lists = {"u1": [["RED CAT", -10.0, -20.0, -5.0], ["READ CAT", -10.0, -12.0, -8.0], ["RED", -11.0, -21.0, -2.0]]}
    assert rescore(lists, 0.0, 0.0, 0.0)["u1"] == "RED CAT"  # ties: the first listed
    assert rescore(lists, 0.5, 0.0, 0.0)["u1"] == "READ CAT"  # the second head tells the homophones apart
    assert rescore(lists, 0.5, 1.0, 0.0)["u1"] == "RED"  # a heavy LM prefers the short sentence
    assert rescore(lists, 0.5, 1.0, 10.0)["u1"] == "READ CAT"  # a word bonus offsets it


def test_tune_picks_the_lowest_dev_wer_and_lists_every_setting():
    dev = {"refs": {"u1": "READ CAT", "u2": "A DOG"},
           "nbest": {"u1": [["RED CAT", -10.0, -20.0, -5.0], ["READ CAT", -10.0, -12.0, -9.0]],
                     "u2": [["A DOG", -4.0, -4.0, -3.0], ["A DOG A", -3.5, -9.0, -8.0]]}}
    best, lines = tune(dev, [0.0, 0.5], [0.0, 1.0], [0.0])
    assert len(lines) == 4 and lines[0] == "aux_weight=0.0 lm_weight=0.0 word_bonus=0.0 dev_wer=0.5000 dev_cer=0.2308"
    assert best == (0.5, 0.0, 0.0)  # the first setting with both utterances right
    assert "dev_wer=0.0000 dev_cer=0.0000" in lines[2]
    # by WER one word-level error beats three cheap ones; by CER the other way round
    split = {"refs": {"u1": "THE CATALOGUE"}, "nbest": {"u1": [["THEE CATALOGS", -1.0, -1.0, 0.0],
                                                            ["THE CAT A LOGUE", -2.0, -0.5, 0.0]]}}
    assert tune(split, [0.0, 1.0], [0.0], [0.0])[0] == (0.0, 0.0, 0.0)
    assert tune(split, [0.0, 1.0], [0.0], [0.0], "cer")[0] == (1.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="must be wer or cer"):
        tune(dev, [0.0], [0.0], [0.0], "ser")


@pytest.fixture(scope="module")
def aux_model(tmp_path_factory) -> Path:
    """A tiny model (2 epochs) with a character head beside another character set's head."""
    from conftest import tiny_base

    from speechmeta.config import load_config
    from speechmeta.train import train

    out = tmp_path_factory.mktemp("rescore")
    tiny_base(out, 2, 1, 4, ["model.dropout=0.0"])
    CharTokenizer.build(list(DataDir.load(out / "train").text.values()) + ["QXZ"]).save(out / "aux_units.txt")
    cfg = load_config(overrides=["model.size=tiny", "train.epochs=2", "train.average_last=1", "train.max_frames=4000",
                                 "train.aux_ctc_weight=0.3"])
    train(cfg, out / "train", out / "train", out / "units.txt", out / "mt", progress=False,
          aux_units=out / "aux_units.txt")
    return out


def test_nbest_then_rescore_tuned_on_dev(aux_model, tmp_path):
    out = aux_model
    run = lambda *a: subprocess.run(cli(*a), capture_output=True, text=True)  # noqa: E731
    r = run("nbest", "--model", out / "base" / "average.pt", "--data", out / "test", "--out", tmp_path / "x")
    assert r.returncode != 0 and "has no auxiliary CTC head to rescore with" in r.stderr
    assert run("train-lm", "--text", out / "train" / "text", "--out", tmp_path / "lm.json").returncode == 0
    for name, data in (("dev", out / "train"), ("test", out / "test")):
        r = run("nbest", "--model", out / "mt" / "average.pt", "--data", data, "--out", tmp_path / name, "--n", 4,
                "--beam", 4, "--lm", tmp_path / "lm.json")
        assert r.returncode == 0, r.stderr
    nbest = json.loads((tmp_path / "test" / "nbest.json").read_text())
    test_utts = DataDir.load(out / "test").utts
    assert sorted(nbest["nbest"]) == sorted(test_utts) and sorted(nbest["refs"]) == sorted(test_utts)
    for hyps in nbest["nbest"].values():
        assert 1 <= len(hyps) <= 8 and len({h[0] for h in hyps}) == len(hyps)  # pooled, distinct
        assert all(h[1] <= 0 and h[2] <= 0 and h[3] < 0 for h in hyps)  # log-likelihoods
    r = run("rescore", "--nbest", tmp_path / "test" / "nbest.json", "--tune-nbest", tmp_path / "dev" / "nbest.json",
            "--aux-weights", 0, 0.5, "--lm-weights", 0, "--word-bonuses", 0, 1, "--out", tmp_path / "r")
    assert r.returncode == 0, r.stderr
    tuning = (tmp_path / "r" / "rescore_tuning.txt").read_text().splitlines()
    assert len(tuning) == 5 and tuning[-1].startswith("best on ")
    hyp = dict(line.partition(" ")[::2] for line in (tmp_path / "r" / "hyp.txt").read_text().splitlines())
    assert sorted(hyp) == sorted(test_utts)
    assert all(hyp[u] in {h[0] for h in nbest["nbest"][u]} for u in test_utts)


def test_nbest_with_a_second_model(aux_model, tmp_path):
    """--second-model: the second column is that model's CTC log-likelihood, not the first model's auxiliary head."""
    from speechmeta.train import load_model, model_data

    out = aux_model
    first, second = out / "mt" / "average.pt", out / "base" / "average.pt"  # the first has an aux head: unused
    r = subprocess.run(cli("nbest", "--model", first, "--second-model", second, "--data", out / "test", "--out",
                           tmp_path, "--n", 3, "--beam", 4), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got = json.loads((tmp_path / "nbest.json").read_text())
    assert got["setup"]["second_model"] == str(second)
    assert sorted(got["nbest"]) == sorted(DataDir.load(out / "test").utts)
    for column, path in ((1, first), (2, second)):
        model, tokenizer, cfg, state = load_model(path)
        data = model_data(out / "test", tokenizer, cfg, state)
        for utt in sorted(got["nbest"])[:3]:
            batch = data.batch([utt])
            with torch.no_grad():
                log_probs, lens = model(batch["feats"], batch["feat_lens"])
            texts = [h[0] for h in got["nbest"][utt]]
            want = sequence_log_likelihoods(log_probs[0, : int(lens[0])], tokenizer, texts)
            assert [h[column] for h in got["nbest"][utt]] == pytest.approx(want, abs=1e-3)
