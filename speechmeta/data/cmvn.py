"""Cepstral mean and variance normalization: statistics (global, per speaker) and their application.

Statistics are kept in Kaldi's layout, a (2, D + 1) float64 matrix: row 0 holds the sum of each dimension and the
frame count in its last column, row 1 the sum of squares. Per-utterance normalization needs no stored statistics:
it is computed on the fly from the utterance itself, which is what helps most on unseen speakers and channels.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from speechmeta.fileio import atomic_open

CMVN_MODES = ("none", "global", "speaker", "utterance")
VAR_FLOOR = 1e-10


def accumulate(stats: np.ndarray | None, feats: np.ndarray) -> np.ndarray:
    """Add the frames of `feats` (T, D) to Kaldi-layout `stats` (2, D + 1); None starts from zero."""
    feats = np.asarray(feats, dtype=np.float64)
    if stats is None:
        stats = np.zeros((2, feats.shape[1] + 1))
    stats[0, :-1] += feats.sum(axis=0)
    stats[1, :-1] += (feats * feats).sum(axis=0)
    stats[0, -1] += feats.shape[0]
    return stats


def mean_std(stats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (D,) from Kaldi-layout statistics."""
    count = stats[0, -1]
    if count <= 0:
        raise ValueError("CMVN statistics hold no frames")
    mean = stats[0, :-1] / count
    var = np.maximum(stats[1, :-1] / count - mean * mean, VAR_FLOOR)
    return mean, np.sqrt(var)


def save_cmvn(path: str | os.PathLike, global_stats: np.ndarray, spk_stats: dict[str, np.ndarray]) -> None:
    """Write `cmvn.npz` atomically: `global` (2, D+1), `spk_ids` (S,), `spk` (S, 2, D+1)."""
    spks = sorted(spk_stats)
    with atomic_open(path, "wb") as f:
        np.savez(f, global_stats=global_stats, spk_ids=np.array(spks, dtype=str),
                 spk=np.stack([spk_stats[s] for s in spks]) if spks else np.zeros((0,) + global_stats.shape))


def load_cmvn(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(global statistics, speaker -> statistics) from `cmvn.npz`."""
    with np.load(Path(path), allow_pickle=False) as z:
        return z["global_stats"], dict(zip(z["spk_ids"].tolist(), z["spk"], strict=True))


def apply_cmvn(feats: np.ndarray, mode: str, stats: np.ndarray | None = None, norm_vars: bool = True) -> np.ndarray:
    """Normalize `feats` (T, D): mode 'global' or 'speaker' uses `stats`, 'utterance' the utterance itself."""
    if mode not in CMVN_MODES:
        raise ValueError(f"unknown CMVN mode '{mode}', expected one of {', '.join(CMVN_MODES)}")
    if mode == "none":
        return feats
    if mode == "utterance":
        stats = accumulate(None, feats)
    elif stats is None:
        raise ValueError(f"CMVN mode '{mode}' needs statistics (run 'speechmeta compute-feats' first)")
    mean, std = mean_std(stats)
    out = feats - mean
    if norm_vars:
        out = out / std
    return out.astype(np.float32, copy=False)
