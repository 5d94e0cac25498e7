"""What can be adapted to a speaker: named parameter sets over the conformer, chosen in config.

- `all`:     every weight of the base model;
- `encoder`: every weight but the convolutional subsampling's: the inner steps then compute the subsampling once
             per speaker and reuse it (on the `small` model it is about a third of a training step's arithmetic);
- `lhuc`:    per-block, per-unit scalers 2·sigmoid(r) (r = 0: scale 1) on the feed-forward and attention outputs
             (Swietojanski & Renals 2014);
- `adapter`: a residual bottleneck after each block, its up-projection zero-initialized (Houlsby et al. 2019);
- `norm`:    LayerNorm gains and biases;
- `bias`:    every bias of the base model.
LHUC scalers and adapters live in `block.speaker` modules attached on demand, separate from the base weights: a
base checkpoint does not have them, and a speaker profile holds only them. At initialization they change nothing.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from speechmeta.model.conformer import ConformerCTC

PARAM_SETS = ("all", "encoder", "lhuc", "adapter", "norm", "bias")


class SpeakerParams(nn.Module):
    def __init__(self, d_model: int, lhuc: bool, adapter_dim: int, generator: torch.Generator | None = None):
        super().__init__()
        self.lhuc = nn.ParameterDict({name: nn.Parameter(torch.zeros(d_model)) for name in ("ff1", "attn", "ff2")}
                                     ) if lhuc else None
        self.adapter_down = nn.Linear(d_model, adapter_dim) if adapter_dim else None
        self.adapter_up = nn.Linear(adapter_dim, d_model) if adapter_dim else None
        if self.adapter_down is not None:  # nn.Linear's own init, from `generator` (not the global RNG)
            nn.init.kaiming_uniform_(self.adapter_down.weight, a=math.sqrt(5), generator=generator)
            nn.init.uniform_(self.adapter_down.bias, -d_model ** -0.5, d_model ** -0.5, generator=generator)
        if self.adapter_up is not None:
            nn.init.zeros_(self.adapter_up.weight)
            nn.init.zeros_(self.adapter_up.bias)

    def scale(self, name: str, h: torch.Tensor) -> torch.Tensor:
        return h if self.lhuc is None else h * (2 * torch.sigmoid(self.lhuc[name]))

    def adapt(self, x: torch.Tensor) -> torch.Tensor:
        if self.adapter_down is None:
            return x
        return x + self.adapter_up(F.silu(self.adapter_down(x)))


def attach_speaker_params(model: ConformerCTC, param_set: str, adapter_dim: int = 32, seed: int = 0) -> ConformerCTC:
    """Give every block the speaker parameters `param_set` needs (LHUC scalers or an adapter); returns `model`.
    Adapter down-projections are drawn from `seed` alone, so an adaptation does not depend on what else drew random
    numbers in the process before it."""
    if param_set not in PARAM_SETS:
        raise ValueError(f"unknown parameter set '{param_set}', expected one of {', '.join(PARAM_SETS)}")
    if param_set in ("lhuc", "adapter"):
        generator = torch.Generator().manual_seed(seed)
        for block in model.blocks:
            d_model = block.norm.normalized_shape[0]
            block.speaker = SpeakerParams(d_model, param_set == "lhuc", adapter_dim if param_set == "adapter" else 0,
                                          generator)
    return model


def adapted_names(model: ConformerCTC, param_set: str) -> list[str]:
    """Names of the parameters that `param_set` adapts (speaker parameters must be attached first)."""
    names = [n for n, _ in model.named_parameters()]
    base = [n for n in names if ".speaker." not in n and not n.startswith("aux_head.")]  # no loss reads aux_head
    chosen = {
        "all": base,
        "encoder": [n for n in base if not n.startswith("subsampling.")],  # the inner steps reuse the subsampling
        "lhuc": [n for n in names if ".speaker.lhuc." in n],
        "adapter": [n for n in names if ".speaker.adapter_" in n],
        "norm": [n for n in base if "norm." in n],
        "bias": [n for n in base if n.endswith(".bias")],
    }[param_set]
    if not chosen:
        raise ValueError(f"the model has no '{param_set}' parameters (call attach_speaker_params first)")
    return chosen


def split_params(model: ConformerCTC, names: list[str]) -> tuple[dict, dict]:
    """(fast, frozen) detached parameter dicts: `names` are adapted, the rest stay fixed."""
    wanted = set(names)
    fast = {n: p.detach() for n, p in model.named_parameters() if n in wanted}
    frozen = {n: p.detach() for n, p in model.named_parameters() if n not in wanted}
    return fast, frozen
