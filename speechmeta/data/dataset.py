"""Utterances ready for the model: normalized features, unit ids, length-sorted batches, padding.

Features computed with another filterbank configuration than the model's (frame shift, bins, ...: the data dir's
fbank/conf.json records it) are refused by name, since the model would silently see frames it was not made for.
Utterances a batch cannot hold are named, never silently used: longer than a batch's `max_frames` (attention
memory grows with the square of the length), or with fewer encoder frames than CTC needs for the transcript (its
loss would be zeroed, so it would teach nothing). Training leaves them out and lists them; decoding refuses them.

A batch is a dict: `feats` (B, T, F) float32, `feat_lens` (B,), `targets` (B, S) int64 padded with 0, `target_lens`
(B,), `utts` (list of ids). Batches hold utterances of similar length (less padding); their order is shuffled from
(seed, epoch) so that a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import os
import random
from pathlib import Path

import numpy as np
import torch

from speechmeta.data.cmvn import apply_cmvn, load_cmvn
from speechmeta.data.datadir import DataDir
from speechmeta.data.fbank import FbankConfig
from speechmeta.data.feats_store import FeatsReader, fbank_config
from speechmeta.data.phone_tokenizer import Tokenizer
from speechmeta.model.conformer import output_lengths

MAX_FRAMES = 20000  # frames of one decoding or adaptation batch (200 s of 10 ms frames): the longest utterance


class UttData:
    """The utterances of a data dir that have features, with their transcripts as unit ids."""

    def __init__(self, data_dir: str | os.PathLike, tokenizer: Tokenizer, cmvn: str = "utterance",
                 global_stats: np.ndarray | None = None, fbank: FbankConfig | None = None,
                 aux_tokenizer: Tokenizer | None = None, need_text: bool = True):
        self.path = Path(data_dir)
        if fbank is not None:
            check_fbank_config(self.path, fbank)
        self.data = DataDir.load(self.path, need_text=need_text)  # untranscribed: every target empty
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
        self.targets = {u: tokenizer.encode(self.data.text[u]) if self.data.text else [] for u in self.utts}
        self.aux_tokenizer = aux_tokenizer  # a second unit set for an auxiliary CTC head (batches carry both)
        self.aux_targets = {u: aux_tokenizer.encode(self.data.text[u]) for u in self.utts} if (
            aux_tokenizer and self.data.text) else {}
        self.num_frames = {u: self.reader.num_frames(u) for u in self.utts}

    def too_long(self, utt: str, max_frames: int) -> str | None:
        """Why `utt` cannot be in a batch of at most `max_frames` frames, or None."""
        n = self.num_frames[utt]
        if n <= max_frames:
            return None
        return (f"{n} frames, more than the {max_frames} of a batch: cut the recording into shorter utterances "
                "(a segments file does it without new audio files)")

    def too_short(self, utt: str) -> str | None:
        """Why CTC cannot align `utt`'s transcript with its frames, or None."""
        have = int(output_lengths(torch.tensor(self.num_frames[utt])))
        for targets in (self.targets[utt], self.aux_targets.get(utt, [])):
            need = ctc_frames_needed(targets)
            if have < need:
                return (f"too short for its transcript: {self.num_frames[utt]} frames give {have} CTC frames, "
                        f"{need} needed for {len(targets)} units")
        return None

    def check_length(self, utts: list[str], max_frames: int) -> None:
        """Raise ValueError naming the first of `utts` longer than `max_frames`."""
        for utt in utts:
            why = self.too_long(utt, max_frames)
            if why:
                raise ValueError(f"utterance '{utt}' ({self.data.audio(utt).path}) of {self.path}: {why}")

    def drop(self, utts: dict[str, str]) -> None:
        """Leave `utts` out of this data (`utts`: utterance -> why)."""
        self.utts = [u for u in self.utts if u not in utts]
        for u in utts:
            self.num_frames.pop(u, None)
            self.targets.pop(u, None)
            self.aux_targets.pop(u, None)

    def feats(self, utt: str) -> np.ndarray:
        stats = self.spk_stats.get(self.data.utt2spk[utt]) if self.cmvn == "speaker" else self.global_stats
        return apply_cmvn(np.array(self.reader[utt], dtype=np.float32), self.cmvn, stats)  # a copy: writable

    def batch(self, utts: list[str]) -> dict:
        feats = [torch.from_numpy(self.feats(u)) for u in utts]
        targets = [torch.tensor(self.targets[u], dtype=torch.long) for u in utts]
        batch = {
            "utts": list(utts),
            "feats": torch.nn.utils.rnn.pad_sequence(feats, batch_first=True),
            "feat_lens": torch.tensor([f.shape[0] for f in feats]),
            "targets": torch.nn.utils.rnn.pad_sequence(targets, batch_first=True) if targets else torch.zeros(0, 0),
            "target_lens": torch.tensor([len(t) for t in targets]),
        }
        if self.aux_tokenizer is not None:
            aux = [torch.tensor(self.aux_targets[u], dtype=torch.long) for u in utts]
            batch["aux_targets"] = torch.nn.utils.rnn.pad_sequence(aux, batch_first=True)
            batch["aux_target_lens"] = torch.tensor([len(t) for t in aux])
        return batch


def check_fbank_config(data_dir: Path, fbank: FbankConfig) -> None:
    """Refuse features computed with another filterbank configuration than `fbank` (where the data dir records it:
    fbank/conf.json, written by compute-feats)."""
    stored = fbank_config(data_dir)
    if stored is None:
        return
    wanted = dataclasses.asdict(fbank)
    differ = {k: (stored.get(k), v) for k, v in wanted.items() if stored.get(k) != v}
    if differ:
        listed = ", ".join(f"fbank.{k}={a} in the features, {b} in the model's config" for k, (a, b) in differ.items())
        raise ValueError(f"{data_dir}: features computed with another filterbank ({listed}); recompute them with the "
                         f"model's config (speechmeta compute-feats {data_dir} --config CONF) or train with theirs")


def ctc_frames_needed(targets: list[int]) -> int:
    """Output frames CTC needs for `targets`: one per unit, plus a blank between two equal neighbours."""
    return len(targets) + sum(a == b for a, b in zip(targets, targets[1:], strict=False))


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
