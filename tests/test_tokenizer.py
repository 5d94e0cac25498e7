"""Character units: explicit normalization, round trips, out-of-vocabulary characters counted."""

from __future__ import annotations

import pytest

from speechmeta.data.tokenizer import CharTokenizer, TextNorm


def test_text_normalization_is_explicit():
    text = "Hello,  “world”!  It’s 3-D."
    assert TextNorm()(text) == "HELLO WORLD IT'S 3 D"
    assert TextNorm(case="lower", keep_apostrophe=False)(text) == "hello world it s 3 d"
    assert TextNorm(case="keep", punctuation="keep")(text) == "Hello, “world”! It's 3-D."
    with pytest.raises(ValueError, match="text_norm.case"):
        TextNorm(case="title")


def test_units_and_round_trip(tmp_path):
    tok = CharTokenizer.build(["hello world", "HOW'S IT"])
    assert tok.units[:3] == ["<blk>", "<unk>", "<space>"] and tok.blank_id == 0
    assert tok.units[3:] == sorted(set("HELLOWORLDHOW'SIT"))
    ids = tok.encode("Hello, world!")
    assert 0 not in ids and tok.decode(ids) == "HELLO WORLD"
    tok.save(tmp_path / "units.txt")
    assert (tmp_path / "units.txt").read_text().splitlines()[:4] == ["<blk> 0", "<unk> 1", "<space> 2", "' 3"]
    again = CharTokenizer.load(tmp_path / "units.txt")
    assert again.units == tok.units and again.norm == tok.norm
    assert CharTokenizer.from_dict(tok.to_dict()).units == tok.units


def test_out_of_vocabulary_characters_are_counted():
    tok = CharTokenizer.build(["ABC"])
    assert tok.count_oov(["abx", "xyz"]) == {"X": 2, "Y": 1, "Z": 1}
    ids = tok.encode("AXB")
    assert ids == [tok.ids["A"], 1, tok.ids["B"]] and tok.oov == {"X": 1}


def test_decode_drops_blanks_and_collapses_spaces():
    tok = CharTokenizer.build(["AB"])
    a, b = tok.ids["A"], tok.ids["B"]
    assert tok.decode([0, a, 2, 2, 0, b, 2]) == "A B"


def test_load_rejects_a_malformed_units_file(tmp_path):
    (tmp_path / "units.txt").write_text("<blk> 0\n<unk> 1\n<space> 3\n")
    with pytest.raises(ValueError, match=r"units.txt:3: expected 'symbol 2'"):
        CharTokenizer.load(tmp_path / "units.txt")
