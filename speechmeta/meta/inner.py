"""The inner loop: adapt a dict of fast parameters to one speaker by gradient steps, purely functionally.

`loss(fast, batch)` evaluates the model with `fast` parameters (the rest frozen) on a batch. Nothing is modified in
place, so the same code runs plain, under `torch.func.grad` (meta-gradients, twice for full MAML) and batched.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.func import functional_call, grad

from speechmeta.model.ctc import ctc_loss

Params = dict[str, torch.Tensor]
LossFn = Callable[[Params, dict], torch.Tensor]


def ctc_task_loss(model: torch.nn.Module, frozen: Params, twice_differentiable: bool = False,
                  bf16: bool = False, vmappable: bool = False) -> LossFn:
    """loss(fast, batch): CTC loss of `model` run with `fast` and `frozen` parameters on `batch`.
    bf16: the model runs under CUDA bf16 autocast (the CTC itself always in fp32). twice_differentiable (full MAML)
    and vmappable (first order, many speakers in one vmap pass) choose the CTC (see speechmeta.model.ctc).
    `loss.prepare(batch)` adds the subsampling's output to a batch when none of its weights adapt: the inner steps
    then reuse it instead of running the convolutions again each step (same result)."""
    sub_names = [n for n, _ in model.subsampling.named_parameters(prefix="subsampling")]
    sub_frozen = {n.removeprefix("subsampling."): frozen[n] for n in sub_names if n in frozen}

    def loss(fast: Params, batch: dict) -> torch.Tensor:
        reuse = {"subsampled": batch["subsampled"]} if "subsampled" in batch else {}
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            log_probs, lens = functional_call(model, {**frozen, **fast}, (batch["feats"], batch["feat_lens"]), reuse)
        return ctc_loss(log_probs.float(), batch["targets"], lens, batch["target_lens"],
                        twice_differentiable=twice_differentiable, vmappable=vmappable)

    def prepare(batch: dict) -> dict:
        if "subsampled" in batch or len(sub_frozen) < len(sub_names):
            return batch  # prepared already, or the subsampling adapts too
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            return {**batch, "subsampled": functional_call(model.subsampling, sub_frozen, (batch["feats"],))}

    loss.prepare = prepare
    return loss


def prepared(loss: LossFn, batch: dict) -> dict:
    """`batch` with what `loss` can compute once for all steps (see ctc_task_loss; other losses: unchanged)."""
    return loss.prepare(batch) if hasattr(loss, "prepare") else batch


def adapt(loss: LossFn, fast: Params, support: dict, lrs: Params, steps: int, first_order: bool) -> Params:
    """`steps` gradient steps on the support batch: fast <- fast - lr * grad. First order: the gradient is a
    constant to whatever differentiates this (FOMAML, first-order Meta-SGD)."""
    support = prepared(loss, support)
    for _ in range(steps):
        g = grad(loss)(fast, support)
        if first_order:
            g = {k: v.detach() for k, v in g.items()}
        fast = {k: fast[k] - lrs[k] * g[k] for k in fast}
    return fast


def plain_grad(loss: LossFn, fast: Params, batch: dict) -> Params:
    """The gradient of `loss` at `fast` by ordinary autograd (a constant: nothing differentiates through it)."""
    leaves = {k: v.detach().requires_grad_() for k, v in fast.items()}
    return dict(zip(leaves, torch.autograd.grad(loss(leaves, batch), list(leaves.values())), strict=True))


def adapt_test_time(loss: LossFn, fast: Params, support: dict, lrs: Params, steps: int) -> Params:
    """The same steps as `adapt`, with ordinary autograd: for adapting to a new speaker, where nothing differentiates
    through the steps, this skips torch.func's transform overhead (equal results, tested)."""
    support = prepared(loss, support)
    for _ in range(steps):
        g = plain_grad(loss, fast, support)
        fast = {k: fast[k].detach() - lrs[k] * g[k] for k in fast}
    return fast
