"""CTC: the loss three ways (PyTorch's fused one; the same kernels wrapped so that `torch.func.vmap` batches them;
one in plain tensor ops that has second derivatives) and greedy decoding.

`F.ctc_loss` has no double backward, but full MAML differentiates the query loss through the inner loop's gradient
steps, so `ctc_loss_ops` writes the log-space forward algorithm out: batched over utterances, masked for their
lengths, out of place, with a large finite "minus infinity" so that unreachable states never make NaN gradients.
`F.ctc_loss` has no vmap rule either; first-order work on many speakers at once (batched adaptation, FOMAML) uses
`VmapCTC`, which folds vmap's speaker dimension into the utterance batch of one fused call instead of running the
tensor-op loop over frames. `tests/test_ctc.py` proves all three equal in value and gradient, and the tensor-op one
passes gradcheck and gradgradcheck.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

NEG = -1e30  # "log 0": finite, so exp(NEG - NEG) = 1 in logsumexp's backward instead of NaN


def ctc_loss(log_probs: torch.Tensor, targets: torch.Tensor, input_lengths: torch.Tensor,
             target_lengths: torch.Tensor, reduction: str = "mean", twice_differentiable: bool = False,
             vmappable: bool = False) -> torch.Tensor:
    """CTC loss of `log_probs` (B, T, C) (log-softmax outputs) for padded `targets` (B, S).

    reduction: "none" (B,), "sum", or "mean" (each loss divided by its target length, then averaged, as torch does).
    Alignments that cannot exist (fewer frames than the targets need) give 0, like `zero_infinity=True`.
    twice_differentiable: the tensor-op forward algorithm (full MAML). vmappable: the fused kernels, usable under
    `torch.func.vmap` and `grad` (first derivatives only).
    """
    if twice_differentiable:
        return ctc_loss_ops(log_probs, targets, input_lengths, target_lengths, reduction)
    if vmappable:
        return reduce(VmapCTC.apply(log_probs, targets, input_lengths, target_lengths)[0], target_lengths, reduction)
    return F.ctc_loss(log_probs.transpose(0, 1), targets, input_lengths, target_lengths, blank=0,
                      reduction=reduction, zero_infinity=True)


def ctc_loss_ops(log_probs: torch.Tensor, targets: torch.Tensor, input_lengths: torch.Tensor,
                 target_lengths: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """The CTC forward algorithm in log space, in differentiable tensor ops (see `ctc_loss` for the arguments)."""
    batch, frames, _ = log_probs.shape
    device, dtype = log_probs.device, log_probs.dtype
    labels = targets.shape[1]
    states = 2 * labels + 1
    targets = targets.long()
    # Extended label sequence: blank, y1, blank, y2, ..., yS, blank (built out of place, vmap-friendly).
    zeros = torch.zeros_like(targets)
    ext = torch.cat([torch.stack([zeros, targets], dim=2).reshape(batch, 2 * labels), zeros[:, :1].expand(batch, 1)
                     if labels else torch.zeros(batch, 1, dtype=torch.long, device=device)], dim=1)
    emissions = log_probs.gather(2, ext.unsqueeze(1).expand(batch, frames, states))  # (B, T, 2S+1)
    # A skip from state s-2 to s is allowed onto a label that differs from the label two states back.
    differs = torch.cat([torch.zeros_like(targets[:, :1], dtype=torch.bool), targets[:, 1:] != targets[:, :-1]], 1)
    no = torch.zeros_like(differs)
    skip = torch.cat([torch.stack([no, differs], dim=2).reshape(batch, 2 * labels),
                      torch.zeros(batch, 1, dtype=torch.bool, device=device)], dim=1)
    neg = torch.full((batch, 1), NEG, dtype=dtype, device=device)

    init = torch.where(torch.arange(states, device=device) < 2, 0.0, NEG).to(dtype)  # start in blank or y1
    alpha = init + emissions[:, 0]
    for t in range(1, frames):
        stay = alpha
        step = torch.cat([neg, alpha[:, :-1]], dim=1)
        jump = torch.where(skip, torch.cat([neg, neg, alpha[:, :-2]], dim=1), neg)
        new = torch.logsumexp(torch.stack([stay, step, jump]), dim=0) + emissions[:, t]
        alpha = torch.where((t < input_lengths).unsqueeze(1), new, alpha)

    last = (2 * target_lengths).long().unsqueeze(1)  # final blank; the final label is one state before it
    end_blank = alpha.gather(1, last).squeeze(1)
    end_label = torch.where(target_lengths > 0, alpha.gather(1, (last - 1).clamp_min(0)).squeeze(1), neg.squeeze(1))
    loss = -torch.logsumexp(torch.stack([end_blank, end_label]), dim=0)  # logaddexp: NaN second derivative here
    loss = torch.where(loss > -NEG / 2, torch.zeros_like(loss), loss)  # impossible alignment: zero, as zero_infinity
    return reduce(loss, target_lengths, reduction)


def reduce(loss: torch.Tensor, target_lengths: torch.Tensor, reduction: str) -> torch.Tensor:
    """Per-utterance losses (B,) reduced as `F.ctc_loss` does."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return (loss / target_lengths.clamp_min(1).to(loss.dtype)).mean()
    raise ValueError(f"unknown reduction '{reduction}'")


class VmapCTC(torch.autograd.Function):
    """Per-utterance CTC losses (B,) from PyTorch's fused kernels, with `zero_infinity`. The forward also computes
    the gradient with respect to `log_probs` (the second output), so the backward is a product that vmap batches;
    the `vmap` rule folds the speaker dimension into the batch: S speakers cost one kernel call, not S."""

    generate_vmap_rule = False

    @staticmethod
    def forward(log_probs: torch.Tensor, targets: torch.Tensor, input_lengths: torch.Tensor,
                target_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lp = log_probs.detach().transpose(0, 1)  # (T, B, C), as the kernels take it
        args = (targets.long(), input_lengths.long(), target_lengths.long())
        nll, alpha = torch.ops.aten._ctc_loss(lp, *args, 0, True)
        grad = torch.ops.aten._ctc_loss_backward(torch.ones_like(nll), lp, *args, nll, alpha, 0, True)
        nll = torch.where(torch.isfinite(nll), nll, torch.zeros_like(nll))
        return nll, grad.transpose(0, 1)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(output[1])

    @staticmethod
    def backward(ctx, grad_nll: torch.Tensor, _: torch.Tensor) -> tuple:
        (grad,) = ctx.saved_tensors
        return grad_nll[:, None, None] * grad, None, None, None

    @staticmethod
    def vmap(info, in_dims: tuple, *inputs: torch.Tensor) -> tuple:
        def fold(x: torch.Tensor, dim: int | None) -> torch.Tensor:  # (S, B, ...) -> (S * B, ...)
            x = x.unsqueeze(0).expand(info.batch_size, *x.shape) if dim is None else x.movedim(dim, 0)
            return x.reshape(-1, *x.shape[2:])

        nll, grad = VmapCTC.apply(*(fold(x, d) for x, d in zip(inputs, in_dims, strict=True)))
        return (nll.view(info.batch_size, -1), grad.view(info.batch_size, -1, *grad.shape[1:])), (0, 0)


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor, blank: int = 0) -> list[list[int]]:
    """Best path per utterance: argmax per frame, repeats merged, blanks removed. `log_probs` (B, T, C)."""
    best = log_probs.argmax(dim=-1).cpu()
    out = []
    for b, length in enumerate(lengths.tolist()):
        path = best[b, :length]
        keep = torch.ones_like(path, dtype=torch.bool)
        if length > 1:
            keep[1:] = path[1:] != path[:-1]
        out.append([int(i) for i in path[keep] if i != blank])
    return out
