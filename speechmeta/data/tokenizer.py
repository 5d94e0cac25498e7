"""Character units for CTC (`units.txt`, blank = 0) and the explicit text normalization applied before them.

`units.txt` is the ESPnet/icefall symbol table, `symbol id` per line: `<blk> 0`, `<unk> 1`, `<space> 2`, then the
characters of the training text in code-point order. The text normalization (case, punctuation) is saved beside it
in `text_norm.json` and inside model checkpoints, so that training, decoding and scoring normalize alike.
"""

from __future__ import annotations

import dataclasses
import json
import os
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from speechmeta.fileio import atomic_write_lines, atomic_write_text

BLANK, UNK, SPACE = "<blk>", "<unk>", "<space>"
APOSTROPHES = {"\u2019": "'", "\u2018": "'", "`": "'"}


@dataclass(frozen=True)
class TextNorm:
    """How transcripts are normalized: Unicode NFKC, case, punctuation, whitespace collapsed."""

    case: str = "upper"  # "upper", "lower" or "keep"
    punctuation: str = "remove"  # "remove" (replaced by a space) or "keep"
    keep_apostrophe: bool = True  # "DON'T" keeps its apostrophe when punctuation is removed

    def __post_init__(self) -> None:
        if self.case not in ("upper", "lower", "keep"):
            raise ValueError(f"text_norm.case must be upper, lower or keep, not '{self.case}'")
        if self.punctuation not in ("remove", "keep"):
            raise ValueError(f"text_norm.punctuation must be remove or keep, not '{self.punctuation}'")

    def __call__(self, text: str) -> str:
        text = unicodedata.normalize("NFKC", text)
        text = "".join(APOSTROPHES.get(c, c) for c in text)
        if self.case == "upper":
            text = text.upper()
        elif self.case == "lower":
            text = text.lower()
        if self.punctuation == "remove":
            text = "".join(
                " " if unicodedata.category(c)[0] in "PS" and not (c == "'" and self.keep_apostrophe) else c
                for c in text
            )
        return " ".join(text.split())


class UnitTable:
    """The symbol table both tokenizers share: `<blk> <unk> <space>` first, no duplicates; `oov` counts what the
    units cannot spell as `encode` meets it."""

    def __init__(self, units: list[str], norm: TextNorm = TextNorm()):
        if units[:3] != [BLANK, UNK, SPACE]:
            raise ValueError(f"units must start with {BLANK} {UNK} {SPACE}, got {units[:3]}")
        if len(set(units)) != len(units):
            raise ValueError("duplicate symbols in units")
        self.units = list(units)
        self.norm = norm
        self.ids = {u: i for i, u in enumerate(self.units)}
        self.oov: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self.units)

    @property
    def blank_id(self) -> int:
        return 0


class CharTokenizer(UnitTable):
    """Maps normalized text to unit ids and back; counts characters outside the vocabulary as it meets them."""

    @classmethod
    def build(cls, texts: Iterable[str], norm: TextNorm = TextNorm()) -> CharTokenizer:
        chars = {c for text in texts for c in norm(text) if c != " "}
        return cls([BLANK, UNK, SPACE] + sorted(chars), norm)

    def encode(self, text: str) -> list[int]:
        """Unit ids of `text` after normalization; unknown characters become <unk> and are counted in `oov`."""
        out = []
        for c in self.norm(text):
            if c == " ":
                out.append(self.ids[SPACE])
            elif c in self.ids:
                out.append(self.ids[c])
            else:
                self.oov[c] += 1
                out.append(self.ids[UNK])
        return out

    def decode(self, ids: Iterable[int]) -> str:
        text = "".join(" " if i == 2 else self.units[i] for i in ids if i != 0)
        return " ".join(text.split())

    def spellings(self, words: Iterable[str] | None = None) -> dict[str, list[tuple[str, ...]]] | None:
        """Unit spellings of `words` for the beam search (each word its characters); None (any word) if None."""
        return None if words is None else {w: [tuple(w)] for w in words}

    def count_oov(self, texts: Iterable[str]) -> Counter[str]:
        """Characters of `texts` (normalized) that are not units, with their counts."""
        return Counter(c for text in texts for c in self.norm(text) if c != " " and c not in self.ids)

    def to_dict(self) -> dict:
        return {"units": self.units, "text_norm": dataclasses.asdict(self.norm)}

    @classmethod
    def from_dict(cls, d: dict) -> CharTokenizer:
        return cls(list(d["units"]), TextNorm(**d["text_norm"]))

    def save(self, path: str | os.PathLike) -> None:
        """Write `units.txt` and, beside it, `text_norm.json`."""
        path = Path(path)
        atomic_write_lines(path, [f"{u} {i}" for i, u in enumerate(self.units)])
        atomic_write_text(path.with_name("text_norm.json"), json.dumps(dataclasses.asdict(self.norm), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> CharTokenizer:
        path = Path(path)
        units = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            fields = line.split()
            if len(fields) != 2 or not fields[1].isdigit() or int(fields[1]) != len(units):
                raise ValueError(f"{path}:{number}: expected 'symbol {len(units)}', got '{line}'")
            units.append(fields[0])
        norm_file = path.with_name("text_norm.json")
        norm = TextNorm(**json.loads(norm_file.read_text())) if norm_file.exists() else TextNorm()
        return cls(units, norm)
