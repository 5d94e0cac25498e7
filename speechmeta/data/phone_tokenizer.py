"""Phone units for CTC from a pronunciation lexicon (Kaldi `lexicon.txt`: `WORD PH1 PH2 ...`), as Kaldi models speech.

English spelling is irregular; with little speech a model learns phones more easily than letters, and a word it never
heard in training can still be recognized from the lexicon. Training targets use each word's first pronunciation;
decoding maps a word's phones back to the word (the first word listed with that pronunciation, or `<unk>`; the beam
search chooses among homophones with the LM). Stress marks (`AH0`, `IY1`) are dropped by default.

Saved as `units.txt` (`<blk> 0`, `<unk> 1`, `<space> 2`, then the phones) with `lexicon.txt` and `text_norm.json`
beside it; inside checkpoints as `to_dict()`. `load_tokenizer` / `tokenizer_from_dict` return this class when a
lexicon comes with the units and `CharTokenizer` otherwise.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from speechmeta.data.tokenizer import BLANK, SPACE, UNK, CharTokenizer, TextNorm, UnitTable
from speechmeta.fileio import atomic_write_lines

Lexicon = dict[str, list[tuple[str, ...]]]  # word -> pronunciations, each a tuple of phones
DEFAULT_NORM = TextNorm()


def read_pron_lexicon(path: str | os.PathLike, norm: TextNorm = DEFAULT_NORM, strip_stress: bool = True) -> Lexicon:
    """Pronunciations of a Kaldi lexicon file, words normalized as transcripts are; variants `WORD(2)` merged."""
    lexicon: Lexicon = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 2:
            raise ValueError(f"{path}:{number}: expected 'WORD PHONE ...', got '{line}'")
        word = norm(re.sub(r"\(\d+\)$", "", fields[0]))
        phones = tuple(re.sub(r"\d+$", "", p) if strip_stress else p for p in fields[1:])
        if " " in word or not word:
            raise ValueError(f"{path}:{number}: '{fields[0]}' is not one word after text normalization ('{word}')")
        prons = lexicon.setdefault(word, [])
        if phones not in prons:
            prons.append(phones)
    if not lexicon:
        raise ValueError(f"{path}: no pronunciations")
    return lexicon


class PhoneTokenizer(UnitTable):
    """Maps normalized text to phone ids through a lexicon and back; counts words outside the lexicon (`oov`)."""

    def __init__(self, units: list[str], norm: TextNorm, lexicon: Lexicon):
        super().__init__(units, norm)
        self.lexicon = lexicon
        missing = sorted({p for prons in lexicon.values() for pron in prons for p in pron} - set(self.ids))
        if missing:
            raise ValueError(f"lexicon phones missing from the units: {missing}")
        self.word_of: dict[tuple[str, ...], str] = {}
        for word, prons in lexicon.items():
            for pron in prons:
                self.word_of.setdefault(pron, word)

    @classmethod
    def build(cls, lexicon: Lexicon, norm: TextNorm = DEFAULT_NORM, texts: Iterable[str] = ()) -> PhoneTokenizer:
        """Units of `lexicon`'s phones; words ordered by their count in `texts` (training transcripts), so that
        of homophones (TO, TWO, TOO) greedy decoding writes the most frequent."""
        counts = Counter(w for text in texts for w in norm(text).split())
        ordered = {w: lexicon[w] for w in sorted(lexicon, key=lambda w: -counts[w])}
        phones = {p for prons in lexicon.values() for pron in prons for p in pron}
        return cls([BLANK, UNK, SPACE] + sorted(phones), norm, ordered)

    def encode(self, text: str) -> list[int]:
        """Phone ids of `text`'s words (first pronunciation), `<space>` between words; a word outside the lexicon
        becomes one `<unk>` and is counted in `oov`."""
        out: list[int] = []
        for word in self.norm(text).split():
            if out:
                out.append(self.ids[SPACE])
            if word in self.lexicon:
                out.extend(self.ids[p] for p in self.lexicon[word][0])
            else:
                self.oov[word] += 1
                out.append(self.ids[UNK])
        return out

    def decode(self, ids: Iterable[int]) -> str:
        """Words of a unit sequence (blanks already removed or not): each run of phones between spaces is looked up."""
        words, phones = [], []
        for i in list(ids) + [2]:
            if i == 2:
                if phones:
                    words.append(self.word_of.get(tuple(phones), UNK))
                phones = []
            elif i != 0:
                phones.append(self.units[i])
        return " ".join(words)

    def spellings(self, words: Iterable[str] | None = None) -> Lexicon:
        """Unit spellings of `words` (all lexicon words if None) for the beam search; words without one are left out."""
        chosen = self.lexicon if words is None else {w: self.lexicon[w] for w in words if w in self.lexicon}
        return dict(chosen)

    def count_oov(self, texts: Iterable[str]) -> Counter[str]:
        """Words of `texts` (normalized) that the lexicon lacks, with their counts."""
        return Counter(w for text in texts for w in self.norm(text).split() if w not in self.lexicon)

    def to_dict(self) -> dict:
        return {"units": self.units, "text_norm": dataclasses.asdict(self.norm),
                "lexicon": [[w, [list(p) for p in prons]] for w, prons in self.lexicon.items()]}

    @classmethod
    def from_dict(cls, d: dict) -> PhoneTokenizer:
        lexicon = {w: [tuple(p) for p in prons] for w, prons in d["lexicon"]}
        return cls(list(d["units"]), TextNorm(**d["text_norm"]), lexicon)

    def save(self, path: str | os.PathLike) -> None:
        """Write `units.txt` and, beside it, `text_norm.json` and `lexicon.txt` (the phones the units use)."""
        path = Path(path)
        CharTokenizer(self.units, self.norm).save(path)
        atomic_write_lines(path.with_name("lexicon.txt"),
                           [f"{w} {' '.join(p)}" for w, prons in self.lexicon.items() for p in prons])


Tokenizer = CharTokenizer | PhoneTokenizer


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """The tokenizer of a units file: phones when `lexicon.txt` lies beside it, characters otherwise."""
    chars = CharTokenizer.load(path)
    lexicon_file = Path(path).with_name("lexicon.txt")
    if not lexicon_file.exists():
        return chars
    return PhoneTokenizer(chars.units, chars.norm, read_pron_lexicon(lexicon_file, chars.norm, strip_stress=False))


def tokenizer_from_dict(d: dict) -> Tokenizer:
    """The tokenizer stored in a checkpoint."""
    return PhoneTokenizer.from_dict(d) if "lexicon" in d else CharTokenizer.from_dict(d)

