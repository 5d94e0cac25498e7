"""CTC prefix beam search (Hannun et al. 2014) over character units, with an optional word lexicon and word n-gram
LM applied at word boundaries: score = log P_ctc(prefix) + lm_weight * log P_lm(words) + word_bonus * words.

With a lexicon, a partial word must be the prefix of a lexicon word and a finished word must be one.
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
    partial: str = ""  # letters of the word being spelled

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
    lexicon: Iterable[str] | None = None
    prune_logp: float = math.log(1e-4)  # ignore units less likely than this in a frame
    _prefixes: set[str] | None = field(default=None, init=False)
    _words: set[str] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.space = self.units.index("<space>")
        if self.lexicon is not None:
            self._words = set(self.lexicon)
            self._prefixes = {w[:i] for w in self._words for i in range(len(w) + 1)}

    def _word_score(self, beam: Beam, word: str) -> float | None:
        """LM + bonus for finishing `word` after beam's words; None if the lexicon forbids it."""
        if self._words is not None and word not in self._words:
            return None
        score = self.word_bonus
        if self.lm is not None:
            history = (BOS,) * (self.lm.order - 1) + beam.words
            score += self.lm_weight * self.lm.logprob(word, history)
        return score

    def _total(self, beam: Beam) -> float:
        return beam.acoustic + beam.lm

    def decode(self, log_probs: np.ndarray) -> str:
        """Best word sequence for one utterance's (T, V) log-probabilities."""
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
                        extra = self._word_score(beam, beam.partial)
                        if extra is None:
                            continue
                        extended = prefix + (c,)
                        if extended not in new:
                            new[extended] = Beam(lm=beam.lm + extra, words=beam.words + (beam.partial,))
                    else:
                        partial = beam.partial + self.units[c]
                        if self._prefixes is not None and partial not in self._prefixes:
                            continue
                        extended = prefix + (c,)
                        if extended not in new:
                            new[extended] = Beam(lm=beam.lm, words=beam.words, partial=partial)
                    target = new[extended]
                    target.label = _logadd(target.label, through)
            beams = dict(sorted(new.items(), key=lambda kv: -self._total(kv[1]))[: self.beam_size])

        def final(beam: Beam) -> float:
            score = self._total(beam)
            if beam.partial:
                extra = self._word_score(beam, beam.partial)
                if extra is None:
                    return NEG_INF
                score += extra
            if self.lm is not None:
                words = beam.words + ((beam.partial,) if beam.partial else ())
                score += self.lm_weight * self.lm.logprob(EOS, (BOS,) * (self.lm.order - 1) + words)
            return score

        best = max(beams.values(), key=final)
        return " ".join(best.words + ((best.partial,) if best.partial else ()))
