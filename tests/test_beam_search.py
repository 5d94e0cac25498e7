"""Prefix beam search and the n-gram LM on hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import frame_log_probs

from speechmeta.lm import NgramLM
from speechmeta.model.beam_search import BeamSearch

UNITS = ["<blk>", "<unk>", "<space>", "A", "B", "C"]


def frames(*rows: dict[str, float]) -> np.ndarray:
    return frame_log_probs(UNITS, *rows)


def test_peaked_outputs_give_the_greedy_answer():
    lp = frames({"A": 1}, {"<blk>": 1}, {"A": 1}, {"<space>": 1}, {"B": 1}, {"B": 1}, {"<blk>": 1})
    assert BeamSearch(UNITS).decode(lp) == "AA B"


def test_beam_size_below_one_is_refused():
    lp = frames({"A": 1}, {"<blk>": 1})
    assert BeamSearch(UNITS, beam_size=1).decode(lp) == "A"
    with pytest.raises(ValueError, match="beam size must be at least 1, not 0"):
        BeamSearch(UNITS, beam_size=0)

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


@pytest.mark.parametrize("smoothing", ["witten_bell", "kneser_ney"])
def test_ngram_probabilities_sum_to_one(smoothing):
    lm = NgramLM.train(["the cat sat", "the dog sat", "a cat ran", "the cat sat down", "a dog sat"], 3, smoothing)
    words = sorted(lm.vocab) + ["</s>"]
    for context in [(), ("the",), ("<s>", "the"), ("zebra", "cat"), ("<s>", "<s>"), ("the", "cat")]:
        total = sum(lm.prob(w, context) for w in words)
        assert total == pytest.approx(1.0, abs=1e-9), context
    assert lm.logprob("cat", ("<s>", "the")) > lm.logprob("ran", ("<s>", "the"))
    assert math.isfinite(lm.logprob("never-seen", ("the",)))


def test_kneser_ney_backs_off_to_how_many_contexts_a_word_follows():
    """FRANCISCO occurs more often than ROME, but only after SAN: after an unseen word, Kneser-Ney expects ROME
    (which follows three words), Witten-Bell FRANCISCO (the more frequent). Hand-checked discounts where the
    count-of-counts allow them: D = k - (k + 1) Y n(k+1) / n(k), Y = n1 / (n1 + 2 n2)."""
    text = ["SAN FRANCISCO"] * 4 + ["TO ROME", "IN ROME", "FROM ROME"]
    kn, wb = NgramLM.train(text, 2, "kneser_ney"), NgramLM.train(text, 2, "witten_bell")
    assert kn.prob("ROME", ("PARIS",)) > kn.prob("FRANCISCO", ("PARIS",))
    assert wb.prob("ROME", ("PARIS",)) < wb.prob("FRANCISCO", ("PARIS",))
    assert kn.table[()]["ROME"] == 3 and kn.table[()]["FRANCISCO"] == 1  # continuation counts
    assert kn._discounts[0] == (0.5, 1.0, 1.5)  # too few counts of 3 and 4: the fixed fallbacks
    # SAN -> FRANCISCO seen 4 times: (4 - D3+) / 4 + gamma * P_lower(FRANCISCO)
    d3 = kn._discounts[1][2]
    assert kn.prob("FRANCISCO", ("SAN",)) == pytest.approx((4 - d3) / 4 + d3 / 4 * kn.prob("FRANCISCO", ()))
    with pytest.raises(ValueError, match="LM smoothing must be one of witten_bell, kneser_ney, not 'good_turing'"):
        NgramLM.train(text, 2, "good_turing")


@pytest.mark.parametrize("smoothing", ["witten_bell", "kneser_ney"])
def test_lm_save_load(tmp_path, smoothing):
    lm = NgramLM.train(["x y z", "x z"], 2, smoothing)
    lm.save(tmp_path / "lm.json")
    again = NgramLM.load(tmp_path / "lm.json")
    assert again.smoothing == smoothing
    assert again.sentence_logprob("x z") == pytest.approx(lm.sentence_logprob("x z"))


def test_nbest_lists_distinct_word_sequences_best_first_and_its_head_is_the_decode():
    lp = frames({"A": 0.6, "B": 0.4}, {"<blk>": 1}, {"<space>": 1}, {"C": 0.7, "A": 0.3})
    search = BeamSearch(UNITS, beam_size=8)
    nbest = search.nbest(lp, 10)
    sequences = [words for _, words in nbest]
    assert len(set(sequences)) == len(sequences) > 2
    assert [s for s, _ in nbest] == sorted((s for s, _ in nbest), reverse=True)
    assert sequences[:2] == [("A", "C"), ("B", "C")] and " ".join(sequences[0]) == search.decode(lp)
    # Each score is the sequence's CTC probability (no LM): A then C is 0.6 * 0.7 of the mass, up to the 1e-6 floor.
    assert math.isclose(nbest[0][0], math.log(0.6 * 0.7), abs_tol=1e-4)
    assert len(search.nbest(lp, 1)) == 1
