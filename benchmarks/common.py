"""What the benchmark scripts share: random features standing in for speech (the cost depends only on shapes)."""

from __future__ import annotations

import torch


def random_batch(utts: int, frames: int, seed: int, device: torch.device, vocab: int = 30,
                 labels: int | None = None) -> dict:
    """A batch of `utts` utterances of `frames` 80-dim frames, with `labels` (default frames // 12, about 3 encoder
    frames per character as in read speech) random targets each."""
    g = torch.Generator().manual_seed(seed)
    labels = frames // 12 if labels is None else labels
    out = {"feats": torch.randn(utts, frames, 80, generator=g), "feat_lens": torch.full((utts,), frames),
           "targets": torch.randint(3, vocab, (utts, labels), generator=g), "target_lens": torch.full((utts,), labels)}
    return {k: v.to(device) for k, v in out.items()}
