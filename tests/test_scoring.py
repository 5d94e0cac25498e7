"""Scoring on hand-computed cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from speechmeta.cli import main
from speechmeta.scoring import bootstrap_ci, score


def test_hand_computed_counts():
    ref = {"a1": "THE CAT SAT", "a2": "A B C D", "b1": "HELLO WORLD"}
    hyp = {"a1": "THE BAT SAT ON", "a2": "A C D", "b1": ""}
    r = score(ref, hyp, {"a1": "spkA", "a2": "spkA", "b1": "spkB"})
    # a1: 1 sub + 1 ins; a2: 1 del; b1: 2 del -> 5 errors over 9 reference words
    assert (r["sub"], r["del"], r["ins"], r["hits"], r["errors"], r["ref_words"]) == (1, 3, 1, 5, 5, 9)
    assert r["wer"] == pytest.approx(5 / 9)
    assert r["kaldi"] == "%WER 55.56 [ 5 / 9, 1 ins, 3 del, 1 sub ]"
    assert r["ser"] == 1.0
    assert r["precision"] == pytest.approx(5 / 7) and r["recall"] == pytest.approx(5 / 9)
    # characters with spaces: a1 C->B and " ON" inserted (4 of 11), a2 "B " deleted (2 of 7)
    assert r["per_speaker"]["spkA"] == {"utts": 2, "ref_words": 7, "errors": 3, "wer": pytest.approx(3 / 7),
                                        "char_errors": 6, "chars": 18}
    assert r["per_speaker"]["spkB"]["wer"] == 1.0
    assert r["per_utterance"]["a1"]["alignment"] == "THE (CAT->BAT) SAT (*->ON)"
    assert r["per_utterance"]["b1"]["alignment"] == "(HELLO->*) (WORLD->*)"
    assert r["per_word"]["CAT"] == {"ref": 1, "hyp": 0, "sub": 1, "del": 0, "ins": 0}
    assert r["per_word"]["ON"] == {"ref": 0, "hyp": 1, "sub": 0, "del": 0, "ins": 1}
    assert "THE" not in r["per_word"]
    # CER: a1 "THE CAT SAT"(11) vs "THE BAT SAT ON": 1 sub + 3 ins; a2 "A B C D"(7) vs "A C D": 2 del;
    # b1 "HELLO WORLD"(11) vs "": 11 del -> 17 / 29
    assert r["cer"] == pytest.approx(17 / 29)


def test_missing_utterances_are_named():
    with pytest.raises(ValueError, match="no hypothesis for 'u2'"):
        score({"u1": "A", "u2": "B"}, {"u1": "A"})
    with pytest.raises(ValueError, match="no reference for 'x9'"):
        score({"u1": "A"}, {"u1": "A", "x9": "B"})


def test_bootstrap_interval_brackets_and_is_deterministic():
    errors, words = np.array([0, 10, 5, 1.0]), np.array([10, 10, 10, 10.0])
    low, high = bootstrap_ci(errors, words)
    assert low <= 16 / 40 <= high and (low, high) == bootstrap_ci(errors, words)
    assert bootstrap_ci(np.array([3.0]), np.array([10.0])) == (0.3, 0.3)


def test_score_command_writes_reports(tmp_path, capsys):
    (tmp_path / "ref").write_text("s1-u1 A B C\ns2-u1 D E\n")
    (tmp_path / "hyp").write_text("s1-u1 A X C\ns2-u1\n")
    (tmp_path / "utt2spk").write_text("s1-u1 s1\ns2-u1 s2\n")
    assert main(["score", "--ref", str(tmp_path / "ref"), "--hyp", str(tmp_path / "hyp"), "--utt2spk",
                 str(tmp_path / "utt2spk"), "--out", str(tmp_path / "out")]) == 0
    assert "%WER 60.00 [ 3 / 5, 0 ins, 2 del, 1 sub ]" in capsys.readouterr().out
    result = json.loads((tmp_path / "out" / "wer.json").read_text())
    assert result["per_speaker"]["s2"]["wer"] == 1.0
    md = (tmp_path / "out" / "wer.md").read_text()
    assert "| s1 | 1 | 3 | 1 | 33.33 |" in md and "s1-u1: A (B->X) C" in md
