"""Prefix beam search and the n-gram LM on hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from speechmeta.lm import NgramLM
from speechmeta.model.beam_search import BeamSearch

UNITS = ["<blk>", "<unk>", "<space>", "A", "B", "C"]


def frames(*rows: dict[str, float]) -> np.ndarray:
    """Log-probabilities per frame from {unit: prob} (the rest shared by what is left)."""
    out = []
    for row in rows:
        p = np.full(len(UNITS), 1e-6)
        for unit, prob in row.items():
            p[UNITS.index(unit)] = prob
        out.append(np.log(p / p.sum()))
    return np.array(out)


def test_peaked_outputs_give_the_greedy_answer():
    lp = frames({"A": 1}, {"<blk>": 1}, {"A": 1}, {"<space>": 1}, {"B": 1}, {"B": 1}, {"<blk>": 1})
    assert BeamSearch(UNITS).decode(lp) == "AA B"


def test_beam_sums_paths_that_greedy_cannot():
    """Best path is blank-blank (empty), but 'A' has more total probability over its paths (0.64 vs 0.36)."""
    lp = frames({"<blk>": 0.6, "A": 0.4}, {"<blk>": 0.6, "A": 0.4})
    assert BeamSearch(UNITS, beam_size=4).decode(lp) == "A"


def test_lm_breaks_an_acoustic_tie():
    lm = NgramLM.train(["A B", "A B", "A B C", "C A"], order=2)
    lp = frames({"A": 1}, {"<space>": 1}, {"B": 0.5, "C": 0.5}, {"<blk>": 1})
    assert BeamSearch(UNITS, lm=lm, lm_weight=1.0).decode(lp) == "A B"
    lm2 = NgramLM.train(["A C", "A C"], order=2)
    assert BeamSearch(UNITS, lm=lm2, lm_weight=1.0).decode(lp) == "A C"


def test_lexicon_forbids_unknown_words():
    lp = frames({"A": 0.6, "B": 0.4}, {"<blk>": 1}, {"C": 1})
    assert BeamSearch(UNITS).decode(lp) == "AC"
    assert BeamSearch(UNITS, lexicon=["BC", "CAB"]).decode(lp) == "BC"


def test_lexicon_keeps_a_beam_when_a_frame_has_only_forbidden_units():
    """The middle frame is all 'C' (blank far below the pruning threshold) and no word has a C: the beams wait on
    blank instead of dying (the search used to end with no beam at all and fail)."""
    lp = frames({"A": 1}, {"C": 1}, {"<blk>": 1})
    assert BeamSearch(UNITS, lexicon=["A", "B"]).decode(lp) == "A"


def test_ngram_probabilities_sum_to_one():
    lm = NgramLM.train(["the cat sat", "the dog sat", "a cat ran"], order=3)
    words = sorted(lm.vocab) + ["</s>"]
    for context in [(), ("the",), ("<s>", "the"), ("zebra", "cat"), ("<s>", "<s>")]:
        total = sum(lm.prob(w, context) for w in words)
        assert total == pytest.approx(1.0, abs=1e-9), context
    assert lm.logprob("cat", ("<s>", "the")) > lm.logprob("ran", ("<s>", "the"))
    assert math.isfinite(lm.logprob("never-seen", ("the",)))


def test_lm_save_load(tmp_path):
    lm = NgramLM.train(["x y z", "x z"], order=2)
    lm.save(tmp_path / "lm.json")
    again = NgramLM.load(tmp_path / "lm.json")
    assert again.sentence_logprob("x z") == pytest.approx(lm.sentence_logprob("x z"))
