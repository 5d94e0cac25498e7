"""A word n-gram language model trained from transcripts: interpolated Witten-Bell or modified Kneser-Ney smoothing.

Small and exact enough for the beam search: probabilities sum to one over the vocabulary plus `</s>` for every
context, unknown words get the unigram floor of `<unk>`. Saved as JSON (counts), so loading runs no code.

Kneser-Ney (Chen & Goodman 1999, as SRILM's `-kndiscount -interpolate` and KenLM build them) estimates a lower order
from how many contexts a word follows, not how often it occurs, and discounts each count by D1, D2 or D3+ taken from
the count-of-counts of that order.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterable

from speechmeta.fileio import atomic_write_text

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
SMOOTHINGS = ("witten_bell", "kneser_ney")


def _continuation_table(counts: dict[tuple[str, ...], Counter], order: int) -> dict[tuple[str, ...], Counter]:
    """Kneser-Ney's counts: the top order's as they are; below it, for each n-gram, the number of distinct words
    that precede it (the padding `<s>` included, so a sentence start counts as a context too)."""
    table = {ctx: c for ctx, c in counts.items() if len(ctx) == order - 1}
    for ctx, c in counts.items():
        if len(ctx) >= 1:
            for word in c:
                table.setdefault(ctx[1:], Counter())[word] += 1
    return table


def _kn_discounts(counters: list[Counter]) -> tuple[float, float, float]:
    """Modified Kneser-Ney's D1, D2, D3+ from one order's count-of-counts (0.5, 1, 1.5 where too few counts)."""
    n = Counter(c for counter in counters for c in counter.values() if c <= 4)
    if min(n[1], n[2], n[3], n[4]) == 0:
        return 0.5, 1.0, 1.5
    y = n[1] / (n[1] + 2 * n[2])
    return tuple(min(max(k - (k + 1) * y * n[k + 1] / n[k], 0.0), float(k)) for k in (1, 2, 3))


class NgramLM:
    def __init__(self, order: int, counts: dict[tuple[str, ...], Counter], smoothing: str = "witten_bell"):
        if smoothing not in SMOOTHINGS:
            raise ValueError(f"LM smoothing must be one of {', '.join(SMOOTHINGS)}, not '{smoothing}'")
        self.order = order
        self.counts = counts  # context tuple (length 0..order-1) -> Counter of next words
        self.smoothing = smoothing
        self.vocab = (set(counts.get((), Counter())) - {EOS}) | {UNK}  # words; </s> is predicted besides them
        self.table = _continuation_table(counts, order) if smoothing == "kneser_ney" else counts
        self._totals = {ctx: sum(c.values()) for ctx, c in self.table.items()}
        self._types = {ctx: len(c) for ctx, c in self.table.items()}
        if smoothing == "kneser_ney":
            self._discounts = {n: _kn_discounts([c for ctx, c in self.table.items() if len(ctx) == n])
                               for n in range(order)}
            self._gamma = {ctx: sum(self._discounts[len(ctx)][min(k, 3) - 1] for k in c.values()) / self._totals[ctx]
                           for ctx, c in self.table.items()}  # the mass the discounts free, given to the lower order
        self._cache: dict[tuple, float] = {}

    @classmethod
    def train(cls, sentences: Iterable[str], order: int = 3, smoothing: str = "witten_bell") -> NgramLM:
        if order < 1:
            raise ValueError("n-gram order must be at least 1")
        counts: dict[tuple[str, ...], Counter] = defaultdict(Counter)
        for sentence in sentences:
            words = [BOS] * (order - 1) + sentence.split() + [EOS]
            for i in range(order - 1, len(words)):
                for n in range(order):
                    counts[tuple(words[i - n:i])][words[i]] += 1
        return cls(order, dict(counts), smoothing)

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
            elif self.smoothing == "kneser_ney":
                count = self.table[context][word]
                discount = self._discounts[len(context)][min(count, 3) - 1] if count else 0.0
                p = (count - discount) / total + self._gamma[context] * lower
            else:
                types = self._types[context]
                p = (self.table[context][word] + types * lower) / (total + types)
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
        data = {"order": self.order, "smoothing": self.smoothing,
                "counts": [[list(ctx), dict(c)] for ctx, c in self.counts.items()]}
        atomic_write_text(path, json.dumps(data))

    @classmethod
    def load(cls, path: str | os.PathLike) -> NgramLM:
        data = json.loads(open(path, encoding="utf-8").read())
        return cls(data["order"], {tuple(ctx): Counter(c) for ctx, c in data["counts"]},
                   data.get("smoothing", "witten_bell"))
