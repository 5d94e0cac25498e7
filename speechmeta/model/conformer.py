"""Conformer encoder with a CTC head (Gulati et al. 2020), written so that meta-learning can differentiate it twice.

feats (B, T, F) -> conv2d subsampling x4 -> LayerNorm -> N x [½ FFN, self-attention with rotary positions,
convolution module, ½ FFN, LayerNorm] -> LayerNorm -> Linear -> log-probabilities (B, T', vocab).
Optionally some blocks' outputs go through that same LayerNorm and Linear too, for intermediate CTC losses in
training (`model.inter_layers`), and their posteriors are added back to the encoder (`model.self_condition`).

Rules (see DESIGN.md): no BatchNorm (the convolution module uses LayerNorm), no in-place writes, attention written
out (scores, mask, softmax) so it has a double backward on CPU, padding masked everywhere so padded frames never
change real frames' outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .dropout import Dropout

SIZES = {  # d_model, layers, heads, conv kernel, feed-forward multiplier
    "tiny": dict(d_model=64, num_layers=2, num_heads=2, conv_kernel=15, ff_mult=2),
    "small": dict(d_model=144, num_layers=6, num_heads=4, conv_kernel=15, ff_mult=4),
    "base": dict(d_model=256, num_layers=16, num_heads=4, conv_kernel=31, ff_mult=4),
}


@dataclass(frozen=True)
class ModelConfig:
    """Encoder shape. `size` picks a preset; a field set to a positive value overrides the preset's."""

    size: str = "small"
    d_model: int = 0
    num_layers: int = 0
    num_heads: int = 0
    conv_kernel: int = 0
    ff_mult: int = 0
    dropout: float = 0.1
    num_mel_bins: int = 80
    subsampling_channels: int = 0  # channels of the two subsampling convolutions; 0: d_model (ESPnet's choice)
    # blocks whose outputs also go through the CTC head (intermediate CTC, Lee and Watanabe 2021), trained with
    # train.inter_ctc_weight > 0; e.g. [3] for the middle of 6
    inter_layers: list[int] = field(default_factory=list)
    self_condition: bool = False  # those blocks' posteriors added back to the encoder through a linear layer, zero at
                                  # first (self-conditioned CTC, Nozaki and Komatsu 2021): used in decoding too

    def resolved(self) -> dict:
        if self.size not in SIZES:
            raise ValueError(f"model.size must be one of {', '.join(SIZES)}, not '{self.size}'")
        preset = dict(SIZES[self.size])
        for key in preset:
            if getattr(self, key) > 0:
                preset[key] = getattr(self, key)
        if preset["d_model"] % preset["num_heads"] or (preset["d_model"] // preset["num_heads"]) % 2:
            raise ValueError(f"d_model {preset['d_model']} must split into {preset['num_heads']} heads of even size")
        if self.subsampling_channels < 0:
            raise ValueError(f"model.subsampling_channels must be >= 0 (0: d_model), not {self.subsampling_channels}")
        preset["subsampling_channels"] = self.subsampling_channels or preset["d_model"]
        bad = [n for n in self.inter_layers if not 1 <= n < preset["num_layers"]]
        if bad or len(set(self.inter_layers)) != len(self.inter_layers):
            raise ValueError(f"model.inter_layers must be distinct blocks 1..{preset['num_layers'] - 1} (the last "
                             f"block's output is the model's output), not {list(self.inter_layers)}")
        if self.self_condition and not self.inter_layers:
            raise ValueError("model.self_condition conditions on the posteriors of model.inter_layers: set them too")
        return preset


def output_lengths(lengths: torch.Tensor) -> torch.Tensor:
    """Frames after the two stride-2, kernel-3 convolutions."""
    return ((lengths - 1) // 2 - 1) // 2


def padding_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """(B, T) True on real frames."""
    return torch.arange(frames, device=lengths.device) < lengths.unsqueeze(1)


class Subsampling(nn.Module):
    """Two 3x3 stride-2 convolutions over (time, frequency), then a projection to d_model. With `channels` = d_model
    (ESPnet's Conv2dSubsampling) the second convolution costs more than all the conformer blocks of `small`; fewer
    channels (icefall's subsampling uses few) make it cheap."""

    def __init__(self, num_mel_bins: int, d_model: int, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, stride=2)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=2)
        self.proj = nn.Linear(channels * (((num_mel_bins - 1) // 2 - 1) // 2), d_model)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = F.silu(self.conv2(F.silu(self.conv1(feats.unsqueeze(1)))))  # (B, C, T', F')
        x = x.permute(0, 2, 1, 3).flatten(2)
        return self.norm(self.proj(x))


class FeedForward(nn.Module):
    def __init__(self, d_model: int, mult: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.up = nn.Linear(d_model, d_model * mult)
        self.down = nn.Linear(d_model * mult, d_model)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.down(self.dropout(F.silu(self.up(self.norm(x))))))


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding of (B, H, T, Dh) with (T, Dh/2) angles: pairs (x1, x2) rotate by position."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)


class SelfAttention(nn.Module):
    """Multi-head self-attention with rotary positions and a key padding mask, as explicit matrix products."""

    def __init__(self, d_model: int, num_heads: int, dropout: float):
        super().__init__()
        self.heads = num_heads
        self.norm = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, frames, d_model = x.shape
        head_dim = d_model // self.heads
        q, k, v = self.qkv(self.norm(x)).view(batch, frames, 3, self.heads, head_dim).permute(2, 0, 3, 1, 4)
        inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2, device=x.device, dtype=torch.float32) / head_dim))
        angles = torch.arange(frames, device=x.device, dtype=torch.float32).unsqueeze(1) * inv_freq
        cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(head_dim)
        scores = scores.masked_fill(~mask[:, None, None, :], torch.finfo(scores.dtype).min)
        weights = self.dropout(scores.softmax(dim=-1))
        context = (weights @ v).transpose(1, 2).reshape(batch, frames, d_model)
        return self.dropout(self.out(context))


class ConvModule(nn.Module):
    """Pointwise conv + GLU, depthwise conv, LayerNorm (not BatchNorm), SiLU, pointwise conv."""

    def __init__(self, d_model: int, kernel: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.pointwise1 = nn.Linear(d_model, 2 * d_model)
        self.depthwise = nn.Conv1d(d_model, d_model, kernel, padding=kernel // 2, groups=d_model)
        self.conv_norm = nn.LayerNorm(d_model)
        self.pointwise2 = nn.Linear(d_model, d_model)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = F.glu(self.pointwise1(self.norm(x)), dim=-1)
        x = x.masked_fill(~mask.unsqueeze(-1), 0.0)  # padded frames must not reach real ones through the kernel
        x = self.depthwise(x.transpose(1, 2)).transpose(1, 2)
        return self.dropout(self.pointwise2(F.silu(self.conv_norm(x))))


class ConformerBlock(nn.Module):
    def __init__(self, d_model: int, num_heads: int, kernel: int, ff_mult: int, dropout: float):
        super().__init__()
        self.ff1 = FeedForward(d_model, ff_mult, dropout)
        self.attn = SelfAttention(d_model, num_heads, dropout)
        self.conv = ConvModule(d_model, kernel, dropout)
        self.ff2 = FeedForward(d_model, ff_mult, dropout)
        self.norm = nn.LayerNorm(d_model)
        self.speaker: nn.Module | None = None  # LHUC scalers / adapter, see adapt_params.attach_speaker_params

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        spk = self.speaker if self.speaker is not None else _NO_SPEAKER
        x = x + 0.5 * spk.scale("ff1", self.ff1(x))
        x = x + spk.scale("attn", self.attn(x, mask))
        x = x + self.conv(x, mask)
        x = x + 0.5 * spk.scale("ff2", self.ff2(x))
        return spk.adapt(self.norm(x))


class _NoSpeaker:
    """What a block without speaker parameters applies: nothing."""

    @staticmethod
    def scale(name: str, h: torch.Tensor) -> torch.Tensor:
        return h

    @staticmethod
    def adapt(x: torch.Tensor) -> torch.Tensor:
        return x


_NO_SPEAKER = _NoSpeaker()


class ConformerCTC(nn.Module):
    """The acoustic model: `model(feats, feat_lens)` -> (log_probs (B, T', vocab), out_lens (B,)).
    `aux_vocab_size` > 0 adds a second CTC head over other units on the same encoder (e.g. characters beside
    phones), trained jointly (`train.aux_ctc_weight`) and read by `aux_log_probs` to rescore hypotheses."""

    def __init__(self, cfg: ModelConfig, vocab_size: int, aux_vocab_size: int = 0):
        super().__init__()
        shape = cfg.resolved()
        d_model = shape["d_model"]
        self.cfg, self.vocab_size = cfg, vocab_size
        self.subsampling = Subsampling(cfg.num_mel_bins, d_model, shape["subsampling_channels"])
        self.dropout = Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(
            ConformerBlock(d_model, shape["num_heads"], shape["conv_kernel"], shape["ff_mult"], cfg.dropout)
            for _ in range(shape["num_layers"])
        )
        self.final_norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)
        self.aux_head = nn.Linear(d_model, aux_vocab_size) if aux_vocab_size else None
        self.inter_layers = tuple(cfg.inter_layers)
        self.condition = nn.ModuleDict(
            {str(n): nn.Linear(vocab_size, d_model) for n in self.inter_layers} if cfg.self_condition else {})
        for layer in self.condition.values():  # at first the model computes what it would without them
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, feats: torch.Tensor, feat_lens: torch.Tensor, subsampled: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """feats (B, T, F) normalized log-mels, feat_lens (B,) -> log-probs (B, T', V), lengths (B,).
        `subsampled`: `self.subsampling(feats)` computed already (adaptation reuses it across its inner steps)."""
        log_probs, lengths, _ = self.forward_inter(feats, feat_lens, subsampled, keep_inter=False)
        return log_probs, lengths

    def forward_inter(self, feats: torch.Tensor, feat_lens: torch.Tensor, subsampled: torch.Tensor | None = None,
                      keep_inter: bool = True) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """As `forward`, with the log-probs of each of `model.inter_layers` (the shared norm and head on that block's
        output) as a third result, for the intermediate CTC losses."""
        encoded, lengths, inter = self.encode(feats, feat_lens, subsampled, keep_inter)
        return self.head(encoded).log_softmax(dim=-1), lengths, inter

    def aux_log_probs(self, encoded: torch.Tensor) -> torch.Tensor:
        """The auxiliary head's log-probs (B, T', aux vocab) of `encode`'s output."""
        if self.aux_head is None:
            raise ValueError("this model has no auxiliary CTC head (trained without --aux-units)")
        return self.aux_head(encoded).log_softmax(dim=-1)

    def encode(self, feats: torch.Tensor, feat_lens: torch.Tensor, subsampled: torch.Tensor | None = None,
               keep_inter: bool = True) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """The encoder's normalized output (B, T', d_model), its lengths, and the intermediate log-probs."""
        x = self.dropout(self.subsampling(feats) if subsampled is None else subsampled)
        lengths = output_lengths(feat_lens)
        mask = padding_mask(lengths, x.shape[1])
        inter = []
        for n, block in enumerate(self.blocks, 1):
            x = block(x, mask)
            if n in self.inter_layers and (keep_inter or str(n) in self.condition):
                inter.append(self.head(self.final_norm(x)).log_softmax(dim=-1))
                if str(n) in self.condition:
                    x = x + self.condition[str(n)](inter[-1].exp())
        return self.final_norm(x), lengths, inter


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
