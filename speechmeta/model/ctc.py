"""CTC: the loss twice (PyTorch's fused one, and one in plain tensor ops that has second derivatives) and greedy
decoding.

`F.ctc_loss` has no double backward, but full MAML differentiates the query loss through the inner loop's gradient
steps, so `ctc_loss_ops` writes the log-space forward algorithm out: batched over utterances, masked for their
lengths, out of place, with a large finite "minus infinity" so that unreachable states never make NaN gradients.
`tests/test_ctc.py` proves it equals `F.ctc_loss` in value and gradient, and passes gradcheck and gradgradcheck.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

NEG = -1e30  # "log 0": finite, so exp(NEG - NEG) = 1 in logsumexp's backward instead of NaN


def ctc_loss(log_probs: torch.Tensor, targets: torch.Tensor, input_lengths: torch.Tensor,
             target_lengths: torch.Tensor, reduction: str = "mean", twice_differentiable: bool = False) -> torch.Tensor:
    """CTC loss of `log_probs` (B, T, C) (log-softmax outputs) for padded `targets` (B, S).

    reduction: "none" (B,), "sum", or "mean" (each loss divided by its target length, then averaged, as torch does).
    Alignments that cannot exist (fewer frames than the targets need) give 0, like `zero_infinity=True`.
    """
    if twice_differentiable:
        return ctc_loss_ops(log_probs, targets, input_lengths, target_lengths, reduction)
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
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return (loss / target_lengths.clamp_min(1).to(loss.dtype)).mean()
    raise ValueError(f"unknown reduction '{reduction}'")


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
