"""CTC prefix beam search (Hannun et al. 2014) over character or phone units, with an optional word lexicon and word
n-gram LM applied at word boundaries: score = log P_ctc(prefix) + lm_weight * log P_lm(words) + word_bonus * words.

With a lexicon, a partial word must be the prefix of a word's spelling in units (its letters, or one of its
pronunciations) and a finished word must be one; of words spelled alike (homophones) the LM's choice is kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from speechmeta.lm import BOS, EOS, NgramLM

NEG_INF = -math.inf


def _logadd(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


@dataclass
class Beam:
    blank: float = NEG_INF  # log P(prefix, path ends in blank)
    label: float = NEG_INF  # log P(prefix, path ends in its last label)
    lm: float = 0.0  # lm_weight * log P_lm(finished words) + word_bonus * finished words
    words: tuple[str, ...] = ()
    partial: tuple[str, ...] = ()  # units of the word being spelled

    @property
    def acoustic(self) -> float:
        return _logadd(self.blank, self.label)


def _entry(beams: dict[tuple[int, ...], Beam], prefix: tuple[int, ...], like: Beam) -> Beam:
    """The beam for `prefix` in `beams`, created with `like`'s words when new."""
    if prefix not in beams:
        beams[prefix] = Beam(lm=like.lm, words=like.words, partial=like.partial)
    return beams[prefix]


@dataclass
class BeamSearch:
    units: list[str]  # id -> unit; 0 is blank, "<space>" separates words
    beam_size: int = 10
    lm: NgramLM | None = None
    lm_weight: float = 0.5
    word_bonus: float = 0.0
    lexicon: Iterable[str] | None = None  # allowed words, spelled by their characters
    spellings: dict[str, list[tuple[str, ...]]] | None = None  # or: allowed words -> their spellings in units
    prune_logp: float = math.log(1e-4)  # ignore units less likely than this in a frame
    _prefixes: set[tuple[str, ...]] | None = field(default=None, init=False)
    _words: dict[tuple[str, ...], list[str]] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise ValueError(f"the beam size must be at least 1, not {self.beam_size}")
        self.space = self.units.index("<space>")
        spellings = self.spellings
        if spellings is None and self.lexicon is not None:
            spellings = {w: [tuple(w)] for w in self.lexicon}
        if spellings is not None:
            self._words = {}
            for word, spelled in spellings.items():
                for s in spelled:
                    self._words.setdefault(tuple(s), []).append(word)
            self._prefixes = {s[:i] for s in self._words for i in range(len(s) + 1)}

    def _finish_word(self, beam: Beam) -> tuple[str, float] | None:
        """The word `beam.partial` spells (the LM's choice among homophones) and its LM + bonus score after beam's
        words; None if the lexicon forbids it."""
        if self._words is None:
            candidates = ["".join(beam.partial)]
        elif beam.partial in self._words:
            candidates = self._words[beam.partial]
        else:
            return None
        if self.lm is None:
            return candidates[0], self.word_bonus
        history = (BOS,) * (self.lm.order - 1) + beam.words
        return max(((w, self.word_bonus + self.lm_weight * self.lm.logprob(w, history)) for w in candidates),
                   key=lambda ws: ws[1])

    def _total(self, beam: Beam) -> float:
        return beam.acoustic + beam.lm

    def decode(self, log_probs: np.ndarray) -> str:
        """Best word sequence for one utterance's (T, V) log-probabilities."""
        return " ".join(self.nbest(log_probs, 1)[0][1])

    def nbest(self, log_probs: np.ndarray, n: int) -> list[tuple[float, tuple[str, ...]]]:
        """Up to `n` distinct word sequences that end the search, best first, with their scores (for rescoring;
        a sequence the lexicon cannot finish is left out, unless nothing else is left)."""
        beams: dict[tuple[int, ...], Beam] = {(): Beam(blank=0.0)}
        for frame in log_probs:
            # Blank always stays a candidate: with a lexicon, every likely unit of a frame may be forbidden.
            candidates = [0] + [int(c) for c in np.nonzero(frame >= self.prune_logp)[0] if c != 0]
            new: dict[tuple[int, ...], Beam] = {}
            for prefix, beam in beams.items():
                for c in candidates:
                    p = float(frame[c])
                    if c == 0:
                        target = _entry(new, prefix, beam)
                        target.blank = _logadd(target.blank, beam.acoustic + p)
                        continue
                    last = prefix[-1] if prefix else None
                    if c == last:  # repeat without a blank between: the same prefix
                        target = _entry(new, prefix, beam)
                        target.label = _logadd(target.label, beam.label + p)
                        through = beam.blank + p  # with a blank between: a new label
                    else:
                        through = beam.acoustic + p
                    if c == self.space:
                        if not beam.partial:  # no empty words: no space at the start or after a space
                            continue
                        finished = self._finish_word(beam)
                        if finished is None:
                            continue
                        extended = prefix + (c,)
                        if extended not in new:
                            new[extended] = Beam(lm=beam.lm + finished[1], words=beam.words + (finished[0],))
                    else:
                        partial = beam.partial + (self.units[c],)
                        if self._prefixes is not None and partial not in self._prefixes:
                            continue
                        extended = prefix + (c,)
                        if extended not in new:
                            new[extended] = Beam(lm=beam.lm, words=beam.words, partial=partial)
                    target = new[extended]
                    target.label = _logadd(target.label, through)
            beams = dict(sorted(new.items(), key=lambda kv: -self._total(kv[1]))[: self.beam_size])

        def final(beam: Beam) -> tuple[float, tuple[str, ...]]:
            score, words = self._total(beam), beam.words
            if beam.partial:
                finished = self._finish_word(beam)
                if finished is None:
                    return NEG_INF, words
                score, words = score + finished[1], words + (finished[0],)
            if self.lm is not None:
                score += self.lm_weight * self.lm.logprob(EOS, (BOS,) * (self.lm.order - 1) + words)
            return score, words

        ranked = sorted(map(final, beams.values()), key=lambda sw: -sw[0])  # stable: ties keep the beams' order
        out: dict[tuple[str, ...], float] = {}  # each word sequence at its best score
        for score, words in ranked:
            if score > NEG_INF and words not in out:
                out[words] = score
        return [(score, words) for words, score in out.items()][:n] or ranked[:1]
