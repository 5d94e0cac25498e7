"""Training-time augmentation on features: SpecAugment masks and speed perturbation (time stretch of the frames).

Random draws come from torch's generator, whose state checkpoints save, so a resumed run repeats them exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class SpecAugmentConfig:
    freq_masks: int = 2
    freq_width: int = 27  # at most this many mel bins per mask
    time_masks: int = 2
    time_width_ratio: float = 0.05  # at most this fraction of the utterance per mask ...
    time_width_max: int = 40  # ... and at most this many frames


def spec_augment(feats: torch.Tensor, lengths: torch.Tensor, cfg: SpecAugmentConfig) -> torch.Tensor:
    """Zero random frequency bands and time spans of each utterance in a (B, T, F) batch (out of place)."""
    batch, frames, bins = feats.shape
    keep = torch.ones_like(feats, dtype=torch.bool)
    freq = torch.arange(bins)
    time = torch.arange(frames)
    for b in range(batch):
        for _ in range(cfg.freq_masks):
            width = int(torch.randint(0, cfg.freq_width + 1, ()).item())
            start = int(torch.randint(0, max(1, bins - width), ()).item())
            keep[b] &= ~((freq >= start) & (freq < start + width)).unsqueeze(0)
        max_width = min(cfg.time_width_max, int(cfg.time_width_ratio * int(lengths[b])))
        for _ in range(cfg.time_masks):
            width = int(torch.randint(0, max_width + 1, ()).item())
            start = int(torch.randint(0, max(1, int(lengths[b]) - width), ()).item())
            keep[b] &= ~((time >= start) & (time < start + width)).unsqueeze(1)
    return feats * keep


def speed_perturb(feats: torch.Tensor, lengths: torch.Tensor, factor: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Stretch (factor < 1: slower, more frames) a (B, T, F) batch in time by linear interpolation."""
    if factor == 1.0:
        return feats, lengths
    frames = max(1, round(feats.shape[1] / factor))
    out = F.interpolate(feats.transpose(1, 2), size=frames, mode="linear", align_corners=False).transpose(1, 2)
    return out, torch.clamp((lengths.float() / factor).round().long(), 1, frames)
