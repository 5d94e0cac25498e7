"""A word n-gram language model trained from transcripts, with interpolated Witten-Bell smoothing.

Small and exact enough for the beam search: probabilities sum to one over the vocabulary plus `</s>` for every
context, unknown words get the unigram floor of `<unk>`. Saved as JSON (counts), so loading runs no code.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterable

from speechmeta.fileio import atomic_write_text

BOS, EOS, UNK = "<s>", "</s>", "<unk>"


class NgramLM:
    def __init__(self, order: int, counts: dict[tuple[str, ...], Counter]):
        self.order = order
        self.counts = counts  # context tuple (length 0..order-1) -> Counter of next words
        self.vocab = (set(counts.get((), Counter())) - {EOS}) | {UNK}  # words; </s> is predicted besides them
        self._totals = {ctx: sum(c.values()) for ctx, c in counts.items()}
        self._types = {ctx: len(c) for ctx, c in counts.items()}
        self._cache: dict[tuple, float] = {}

    @classmethod
    def train(cls, sentences: Iterable[str], order: int = 3) -> NgramLM:
        if order < 1:
            raise ValueError("n-gram order must be at least 1")
        counts: dict[tuple[str, ...], Counter] = defaultdict(Counter)
        for sentence in sentences:
            words = [BOS] * (order - 1) + sentence.split() + [EOS]
            for i in range(order - 1, len(words)):
                for n in range(order):
                    counts[tuple(words[i - n:i])][words[i]] += 1
        return cls(order, dict(counts))

    def prob(self, word: str, context: tuple[str, ...]) -> float:
        """P(word | context) interpolated down to a uniform distribution over the vocabulary."""
        context = tuple(context[-(self.order - 1):]) if self.order > 1 else ()
        key = (word, context)
        if key not in self._cache:
            if context:
                lower = self.prob(word, context[1:])
            else:
                lower = 1.0 / (len(self.vocab) + 1)  # + </s>
            total = self._totals.get(context, 0)
            if total == 0:
                p = lower
            else:
                types = self._types[context]
                p = (self.counts[context][word] + types * lower) / (total + types)
            self._cache[key] = p
        return self._cache[key]

    def logprob(self, word: str, context: tuple[str, ...]) -> float:
        return math.log(self.prob(word if word in self.vocab or word == EOS else UNK, context))

    def sentence_logprob(self, sentence: str) -> float:
        words = sentence.split() + [EOS]
        history = [BOS] * (self.order - 1)
        total = 0.0
        for w in words:
            total += self.logprob(w, tuple(history))
            history.append(w)
        return total

    def save(self, path: str | os.PathLike) -> None:
        data = {"order": self.order, "counts": [[list(ctx), dict(c)] for ctx, c in self.counts.items()]}
        atomic_write_text(path, json.dumps(data))

    @classmethod
    def load(cls, path: str | os.PathLike) -> NgramLM:
        data = json.loads(open(path, encoding="utf-8").read())
        return cls(data["order"], {tuple(ctx): Counter(c) for ctx, c in data["counts"]})
