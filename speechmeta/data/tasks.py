"""Speakers as tasks: meta-batches of B speakers, each with K support and Q query utterances (disjoint).

Meta-batch number i is a function of (seed, i) alone, so a resumed meta-training run draws the same tasks.
`shots` may be a list of K: each meta-batch then draws one of them (the same K for all its speakers, so that they
batch together), which meta-trains for every K the model will be adapted with.
Speakers with fewer than max(K) + Q utterances cannot make a task; they are listed in `skipped`, never silently
dropped.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    spk: str
    support: list[str]  # K utterances the model adapts on
    query: list[str]  # Q other utterances the adapted model is scored on


class SpeakerTasks:
    def __init__(self, spk2utt: dict[str, list[str]], shots: int | list[int], query: int, speakers_per_batch: int,
                 seed: int = 0):
        self.shots = sorted(set(shots)) if isinstance(shots, (list, tuple)) else [shots]
        if not self.shots or min(self.shots) < 0 or query < 1 or speakers_per_batch < 1:
            raise ValueError("need shots >= 0 (one K or a list), query >= 1, speakers_per_batch >= 1")
        self.query, self.batch, self.seed = query, speakers_per_batch, seed
        shots = max(self.shots)
        need = shots + query
        self.spk2utt = {s: sorted(u) for s, u in spk2utt.items() if len(u) >= need}
        self.skipped = {s: f"{len(u)} utterances, a task needs {need} ({shots} support + {query} query)"
                        for s, u in sorted(spk2utt.items()) if len(u) < need}
        if len(self.spk2utt) < speakers_per_batch:
            raise ValueError(f"only {len(self.spk2utt)} speakers have {need} utterances; a meta-batch needs "
                             f"{speakers_per_batch} ({len(self.skipped)} skipped: "
                             f"{', '.join(f'{s}: {why}' for s, why in list(self.skipped.items())[:3])}); lower "
                             "meta.shots, meta.query or meta.speakers_per_batch")
        self.speakers = sorted(self.spk2utt)

    def meta_batch(self, index: int) -> list[Task]:
        """The `index`-th meta-batch: B different speakers, each with disjoint support and query utterances."""
        rng = random.Random(self.seed * 1_000_003 + index)
        shots = self.shots[0] if len(self.shots) == 1 else rng.choice(self.shots)  # one K: the draws of before
        tasks = []
        for spk in rng.sample(self.speakers, self.batch):
            utts = rng.sample(self.spk2utt[spk], shots + self.query)
            tasks.append(Task(spk, utts[:shots], utts[shots:]))
        return tasks
