"""Training-time augmentation on features: SpecAugment masks, speed perturbation (time stretch of the frames) and
frequency warping (VTLP-style stretch of the mel axis: a cheap stand-in for other vocal tract lengths, which helps
when a corpus has few training speakers).

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


def warp_factors(count: int, max_warp: float) -> torch.Tensor:
    """`count` VTLP factors drawn from [1 - max_warp, 1 + max_warp]."""
    return 1.0 + (torch.rand(count) * 2 - 1) * max_warp


def freq_warp(feats: torch.Tensor, max_warp: float, factor: float | None = None) -> torch.Tensor:
    """Warp the mel axis of each utterance of a (B, T, F) batch by a factor drawn from [1 - max_warp, 1 + max_warp]
    (or by `factor`, the same for all: one speaker's voice): bin f reads the input at f * factor up to 85% of the
    band, then a straight line keeps the top bin in place (piecewise-linear, as in VTLP, Jaitly & Hinton 2013), with
    linear interpolation between bins."""
    if (factor is None and max_warp <= 0) or factor == 1.0:
        return feats
    batch, _, bins = feats.shape
    top = bins - 1.0
    if factor is None:
        factor = warp_factors(batch, max_warp).unsqueeze(1)  # (B, 1)
    else:
        factor = torch.full((batch, 1), float(factor))
    cut = 0.85 * top * torch.clamp(factor, max=1.0) / factor
    f = torch.arange(bins, dtype=feats.dtype).unsqueeze(0)  # (1, F)
    pos = torch.where(f <= cut, f * factor, top - (top - cut * factor) * (top - f) / (top - cut))
    pos = pos.clamp(0, top)
    lo = pos.floor().long().clamp(max=bins - 2)
    frac = (pos - lo).unsqueeze(1)  # (B, 1, F)
    lo = lo.unsqueeze(1).expand(-1, feats.shape[1], -1)
    return feats.gather(2, lo) * (1 - frac) + feats.gather(2, lo + 1) * frac
