"""Batched speakers: the adaptation, or the meta-gradients, of S speakers in one pass with `torch.func.vmap`, no
Python loop over speakers. Each task's batches are padded to a common shape and stacked along a leading speaker
dimension; padding is masked everywhere in the model and the loss, so the result equals the per-speaker loop
(tested). The loss must be one vmap can batch: `vmappable=True` (PyTorch's fused CTC with a vmap rule; first order)
or `twice_differentiable=True` (the tensor-op CTC, for second-order MAML).
"""

from __future__ import annotations

import torch
from torch.func import vmap

from speechmeta.meta.algorithms import meta_gradient, pad_time
from speechmeta.meta.inner import LossFn, Params, adapt, prepared

KEYS = ("feats", "feat_lens", "targets", "target_lens")


def stack_batches(batches: list[dict]) -> dict:
    """(S, B, ...) tensors of KEYS from S batches of B utterances each, padded to the longest in time and labels."""
    if len({b["feat_lens"].shape[0] for b in batches}) != 1:
        raise ValueError("every task needs the same number of utterances to be batched")
    out = {}
    for k in ("feats", "targets"):
        width = max(b[k].shape[1] for b in batches)
        out[k] = torch.stack([pad_time(b[k], width) for b in batches])
    for k in ("feat_lens", "target_lens"):
        out[k] = torch.stack([b[k] for b in batches])
    return out


def prepared_stack(loss: LossFn, stack: dict) -> dict:
    """`prepared` for a stack of S speakers' batches, before vmap: the speakers folded into the utterance batch, so
    the subsampling runs as one call (under vmap its convolutions also escaped CUDA bf16 autocast and failed)."""
    flat = prepared(loss, {k: v.flatten(0, 1) for k, v in stack.items()})
    return {k: v.unflatten(0, stack["feats"].shape[:2]) for k, v in flat.items()}


def batched_meta_gradient(algorithm: str, loss: LossFn, init: Params, lrs: Params, supports: list[dict],
                          queries: list[dict], steps: int, first_order: bool = True) -> tuple[Params, Params | None]:
    """Task-averaged (gradient for the initialization, gradient for the rates or None) over all speakers at once."""

    def one(support: dict, query: dict) -> tuple[Params, Params]:
        g, g_lrs = meta_gradient(algorithm, loss, init, lrs, support, query, steps, first_order)
        return g, (g_lrs if g_lrs is not None else {})  # vmap returns tensors only

    support, query = (prepared_stack(loss, stack_batches(b)) for b in (supports, queries))
    g, g_lrs = vmap(one, randomness="different")(support, query)
    mean = {k: v.mean(0) for k, v in g.items()}
    return mean, ({k: v.mean(0) for k, v in g_lrs.items()} if g_lrs else None)


def batched_adapt(loss: LossFn, init: Params, lrs: Params, supports: list[dict], steps: int,
                  chunk_size: int | None = None) -> Params:
    """Adapt S speakers at once: `init` adapted on each support batch, every tensor with a leading speaker dimension
    (S, ...). `chunk_size` speakers at a time bound the memory (None: all)."""
    support = prepared_stack(loss, stack_batches(supports))

    def one(batch: dict) -> Params:
        return adapt(loss, init, batch, lrs, steps, first_order=True)

    return vmap(one, randomness="different", chunk_size=chunk_size)(support)
