"""Outer updates of meta-learning across speakers: what gradient each algorithm gives the initialization (and, for
Meta-SGD, the inner learning rates) from one speaker's task.

- MAML:     d/dθ L_query(adapt(θ)), second order: differentiates through the inner gradient steps.
- FOMAML:   the same with inner gradients held constant, i.e. ∇L_query at the adapted parameters.
- Meta-SGD: MAML's gradient also for the per-parameter inner rates α; with `first_order` the inner gradients are
            constants, so dL/dα is the first-order meta-gradient (-∇L_query · ∇L_support for one step).
- Reptile:  no query gradient: θ - φ, where φ is θ adapted on the task's support and query utterances.
"""

from __future__ import annotations

import torch
from torch.func import grad

from speechmeta.meta.inner import LossFn, Params, adapt, prepared

ALGORITHMS = ("fomaml", "reptile", "metasgd", "maml")


def meta_gradient(algorithm: str, loss: LossFn, init: Params, lrs: Params, support: dict, query: dict,
                  steps: int, first_order: bool = True) -> tuple[Params, Params | None]:
    """(gradient for the initialization, gradient for the inner rates or None) from one task."""

    def query_loss(theta: Params, alpha: Params, order_one: bool) -> torch.Tensor:
        return loss(adapt(loss, theta, support, alpha, steps, order_one), query)

    if algorithm == "maml":
        return grad(query_loss)(init, lrs, False), None
    if algorithm == "fomaml":
        return grad(query_loss)(init, lrs, True), None
    if algorithm == "metasgd":
        g_init, g_lrs = grad(query_loss, argnums=(0, 1))(init, lrs, first_order)
        return g_init, g_lrs
    if algorithm == "reptile":
        adapted = adapt(loss, init, merge_batches(support, query), lrs, steps, True)
        return {k: init[k] - adapted[k] for k in init}, None
    raise ValueError(f"unknown meta-learning algorithm '{algorithm}', expected one of {', '.join(ALGORITHMS)}")


def autograd_gradient(algorithm: str, loss: LossFn, init: Params, lrs: Params, support: dict, query: dict,
                      steps: int, first_order: bool = True) -> tuple[Params, Params | None]:
    """`meta_gradient` of FOMAML, Meta-SGD or MAML by ordinary autograd, for the loop over speakers (not under
    vmap): it skips torch.func's transforms, which cost more than the backward passes themselves. One backward pass
    from the query loss reaches θ and α through the inner steps φ = θ - Σ_j α ⊙ g_j. Second order (MAML, Meta-SGD
    with first_order=False): the inner gradients g_j keep their graph (create_graph). First order: they are
    constants, so dL_q/dθ = ∇L_q(φ) and dL_q/dα = -∇L_q(φ) ⊙ Σ_j g_j."""
    if algorithm not in ("fomaml", "metasgd", "maml"):
        raise ValueError(f"no meta-gradient by plain autograd for '{algorithm}'")
    second_order = algorithm == "maml" or (algorithm == "metasgd" and not first_order)
    support = prepared(loss, support)
    theta = {k: v.detach().requires_grad_() for k, v in init.items()}
    alpha = {k: v.detach().requires_grad_(algorithm == "metasgd") for k, v in lrs.items()}
    fast = theta
    for _ in range(steps):
        g = torch.autograd.grad(loss(fast, support), list(fast.values()), create_graph=second_order)
        fast = {k: fast[k] - alpha[k] * gk for k, gk in zip(fast, g, strict=True)}
    wrt = list(theta.values()) + (list(alpha.values()) if algorithm == "metasgd" else [])
    grads = torch.autograd.grad(loss(fast, query), wrt)
    g_init = dict(zip(theta, grads[:len(theta)], strict=True))
    return g_init, (dict(zip(alpha, grads[len(theta):], strict=True)) if algorithm == "metasgd" else None)


def pad_time(t: torch.Tensor, width: int) -> torch.Tensor:
    """Pad dimension 1 (time of feats (B, T, F), or labels of targets (B, S)) to `width`."""
    pad = (0, 0, 0, width - t.shape[1]) if t.dim() == 3 else (0, width - t.shape[1])
    return torch.nn.functional.pad(t, pad)


def merge_batches(a: dict, b: dict) -> dict:
    """One padded batch holding the utterances of batches `a` and `b`."""
    out = {k: torch.cat([a[k], b[k]]) for k in ("feat_lens", "target_lens")}
    prepared = ("subsampled",) if "subsampled" in a and "subsampled" in b else ()  # padding is masked alike
    for k in ("feats", "targets", *prepared):
        width = max(a[k].shape[1], b[k].shape[1])
        out[k] = torch.cat([pad_time(a[k], width), pad_time(b[k], width)])
    out["utts"] = list(a.get("utts", [])) + list(b.get("utts", []))
    return out
