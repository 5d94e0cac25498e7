"""Utterances ready for the model: normalized features, unit ids, length-sorted batches, padding.

A batch is a dict: `feats` (B, T, F) float32, `feat_lens` (B,), `targets` (B, S) int64 padded with 0, `target_lens`
(B,), `utts` (list of ids). Batches hold utterances of similar length (less padding); their order is shuffled from
(seed, epoch) so that a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from speechmeta.data.cmvn import apply_cmvn, load_cmvn
from speechmeta.data.datadir import DataDir
from speechmeta.data.feats_store import FeatsReader
from speechmeta.data.tokenizer import CharTokenizer


class UttData:
    """The utterances of a data dir that have features, with their transcripts as unit ids."""

    def __init__(self, data_dir: str | os.PathLike, tokenizer: CharTokenizer, cmvn: str = "utterance",
                 global_stats: np.ndarray | None = None):
        self.path = Path(data_dir)
        self.data = DataDir.load(self.path)
        self.reader = FeatsReader(self.path)
        self.cmvn = cmvn
        self.spk_stats: dict[str, np.ndarray] = {}
        self.global_stats = global_stats
        if cmvn in ("global", "speaker"):
            stored_global, self.spk_stats = load_cmvn(self.path / "cmvn.npz")
            if self.global_stats is None:
                self.global_stats = stored_global
        self.utts = [u for u in self.data.utts if u in self.reader]
        self.missing = [u for u in self.data.utts if u not in self.reader]  # e.g. skipped as bad audio
        self.tokenizer = tokenizer
        self.targets = {u: tokenizer.encode(self.data.text[u]) for u in self.utts}
        self.num_frames = {u: self.reader.num_frames(u) for u in self.utts}

    def feats(self, utt: str) -> np.ndarray:
        stats = self.spk_stats.get(self.data.utt2spk[utt]) if self.cmvn == "speaker" else self.global_stats
        return apply_cmvn(np.array(self.reader[utt], dtype=np.float32), self.cmvn, stats)  # a copy: writable

    def batch(self, utts: list[str]) -> dict:
        feats = [torch.from_numpy(self.feats(u)) for u in utts]
        targets = [torch.tensor(self.targets[u], dtype=torch.long) for u in utts]
        return {
            "utts": list(utts),
            "feats": torch.nn.utils.rnn.pad_sequence(feats, batch_first=True),
            "feat_lens": torch.tensor([f.shape[0] for f in feats]),
            "targets": torch.nn.utils.rnn.pad_sequence(targets, batch_first=True) if targets else torch.zeros(0, 0),
            "target_lens": torch.tensor([len(t) for t in targets]),
        }


def length_batches(num_frames: dict[str, int], max_frames: int, seed: int = 0, epoch: int = 0,
                   shuffle: bool = True) -> list[list[str]]:
    """Utterances sorted by length, cut into batches of at most `max_frames` padded frames; batch order shuffled
    from (seed, epoch) unless `shuffle` is False (shortest batches first)."""
    ordered = sorted(num_frames, key=lambda u: (num_frames[u], u))
    batches: list[list[str]] = []
    current: list[str] = []
    for utt in ordered:
        if current and num_frames[utt] * (len(current) + 1) > max_frames:
            batches.append(current)
            current = []
        current.append(utt)
    if current:
        batches.append(current)
    if shuffle:
        random.Random(seed * 100_003 + epoch).shuffle(batches)
    return batches
