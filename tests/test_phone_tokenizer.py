"""Phone units from a pronunciation lexicon: reading Kaldi lexicons, round trips, homophones, the beam search over
phones, and `speechmeta make-units --lexicon`."""

from __future__ import annotations

import pytest
from conftest import frame_log_probs

from speechmeta.cli import main
from speechmeta.data.phone_tokenizer import PhoneTokenizer, load_tokenizer, read_pron_lexicon, tokenizer_from_dict
from speechmeta.data.tokenizer import CharTokenizer
from speechmeta.lm import NgramLM
from speechmeta.model.beam_search import BeamSearch

LEXICON = """\
TO T UW1
TO(2) T AH0
TWO T UW1
CAT K AE1 T
A AH0
A(2) EY1
a AH0
"""


@pytest.fixture
def lexicon_file(tmp_path):
    path = tmp_path / "lexicon.txt"
    path.write_text(LEXICON)
    return path


def test_lexicon_is_read_with_variants_merged_and_stress_dropped(lexicon_file, tmp_path):
    lex = read_pron_lexicon(lexicon_file)
    assert lex == {"TO": [("T", "UW"), ("T", "AH")], "TWO": [("T", "UW")], "CAT": [("K", "AE", "T")],
                   "A": [("AH",), ("EY",)]}  # 'a' is A after normalization, its pronunciation already listed
    assert read_pron_lexicon(lexicon_file, strip_stress=False)["A"] == [("AH0",), ("EY1",)]
    bad = tmp_path / "bad.txt"
    bad.write_text("TO T UW\nCAT\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: expected 'WORD PHONE \.\.\.', got 'CAT'"):
        read_pron_lexicon(bad)


def test_encode_decode_and_homophones(lexicon_file):
    tok = PhoneTokenizer.build(read_pron_lexicon(lexicon_file), texts=["TWO CAT", "TWO", "TO"])
    assert tok.units == ["<blk>", "<unk>", "<space>", "AE", "AH", "EY", "K", "T", "UW"]
    ids = tok.encode("a cat, to two!")
    assert [tok.units[i] for i in ids] == ["AH", "<space>", "K", "AE", "T", "<space>", "T", "UW", "<space>", "T", "UW"]
    # T UW spells TO and TWO: greedy decoding writes the one more frequent in the training text
    assert tok.decode(ids) == "A CAT TWO TWO"
    assert tok.decode([0, 7, 4, 2, 2, 6, 0]) == "TO <unk>"  # T AH: TO's second pronunciation; K alone: no word
    assert tok.encode("CAT DOG") == tok.encode("CAT")[:3] + [2, 1] and tok.oov == {"DOG": 1}
    assert tok.count_oov(["dog cat Dog"]) == {"DOG": 2}


def test_save_load_and_checkpoint_dict(lexicon_file, tmp_path):
    tok = PhoneTokenizer.build(read_pron_lexicon(lexicon_file), texts=["TWO"])
    tok.save(tmp_path / "lang" / "units.txt")
    assert (tmp_path / "lang" / "lexicon.txt").read_text().splitlines()[0] == "TWO T UW"  # most frequent first
    again = load_tokenizer(tmp_path / "lang" / "units.txt")
    assert isinstance(again, PhoneTokenizer)
    assert again.units == tok.units and again.lexicon == tok.lexicon and again.decode([7, 8]) == "TWO"
    from_ckpt = tokenizer_from_dict(tok.to_dict())
    assert isinstance(from_ckpt, PhoneTokenizer) and from_ckpt.lexicon == tok.lexicon
    CharTokenizer.build(["AB"]).save(tmp_path / "chars" / "units.txt")
    assert isinstance(load_tokenizer(tmp_path / "chars" / "units.txt"), CharTokenizer)
    assert isinstance(tokenizer_from_dict(CharTokenizer.build(["AB"]).to_dict()), CharTokenizer)
    with pytest.raises(ValueError, match=r"lexicon phones missing from the units: \['UW'\]"):
        PhoneTokenizer(tok.units[:-1], tok.norm, tok.lexicon)


def test_beam_search_spells_words_in_phones_and_lets_the_lm_pick_homophones(lexicon_file):
    tok = PhoneTokenizer.build(read_pron_lexicon(lexicon_file))
    lp = frame_log_probs(tok.units, {"K": 1}, {"AE": 1}, {"T": 1}, {"<space>": 1}, {"T": 1}, {"UW": 1}, {"<blk>": 1})
    assert BeamSearch(tok.units, spellings=tok.spellings()).decode(lp) in ("CAT TO", "CAT TWO")
    for text in ("CAT TWO", "CAT TO"):
        lm = NgramLM.train([text] * 3, order=2)
        assert BeamSearch(tok.units, lm=lm, lm_weight=1.0, spellings=tok.spellings()).decode(lp) == text
    # a --lexicon word list narrows the words: without TWO, T UW can only be TO
    assert BeamSearch(tok.units, lm=NgramLM.train(["CAT TWO"] * 3, order=2), lm_weight=1.0,
                      spellings=tok.spellings(["CAT", "TO"])).decode(lp) == "CAT TO"
    # a phone run that spells no word is never finished: K AE alone is not a word, so the beam keeps CAT's T
    lp2 = frame_log_probs(tok.units, {"K": 1}, {"AE": 1}, {"T": 0.4, "<blk>": 0.6}, {"<blk>": 1})
    assert BeamSearch(tok.units, spellings=tok.spellings()).decode(lp2) == "CAT"


def test_make_units_with_a_lexicon(lexicon_file, tmp_path, capsys):
    data = tmp_path / "train"
    data.mkdir()
    (data / "text").write_text("s1-u1 two cat\ns1-u2 a dog\n")
    assert main(["make-units", str(data), "--out", str(tmp_path / "lang" / "units.txt"),
                 "--lexicon", str(lexicon_file)]) == 0
    out = capsys.readouterr().out
    assert "9 units (phones of" in out and "1 word(s) outside the lexicon: 'DOG' x1" in out
    assert isinstance(load_tokenizer(tmp_path / "lang" / "units.txt"), PhoneTokenizer)
