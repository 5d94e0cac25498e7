"""The twice-differentiable and the vmappable CTC equal F.ctc_loss (values and gradients, vmapped too), and the
twice-differentiable one has correct second derivatives."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.func import grad, vmap

from speechmeta.model.ctc import ctc_loss, greedy_decode


def random_batch(batch=4, frames=12, classes=6, labels=5, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, frames, classes, generator=g, dtype=dtype)
    input_lengths = torch.tensor([frames, frames - 3, frames - 1, 7][:batch])
    target_lengths = torch.tensor([labels, 3, 0, 2][:batch])
    targets = torch.randint(1, classes, (batch, labels), generator=g)
    targets[1, 1] = targets[1, 0]  # a repeated label needs a blank between its two frames
    for b, n in enumerate(target_lengths.tolist()):
        targets[b, n:] = 0  # padding
    return logits, targets, input_lengths, target_lengths


MODES = [{}, {"twice_differentiable": True}, {"vmappable": True}]  # F.ctc_loss first: the reference


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_equals_torch_ctc_in_value_and_gradient(reduction):
    logits, targets, in_len, tgt_len = random_batch()
    results = []
    for mode in MODES:
        x = logits.clone().requires_grad_()
        loss = ctc_loss(x.log_softmax(-1), targets, in_len, tgt_len, reduction, **mode)
        (g,) = torch.autograd.grad(loss.sum(), x)
        results.append((loss.detach(), g))
    for value, g in results[1:]:
        torch.testing.assert_close(value, results[0][0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(g, results[0][1], rtol=1e-4, atol=1e-5)


def test_impossible_alignment_is_zero_like_zero_infinity():
    logits = torch.randn(1, 3, 5, requires_grad=True)
    targets = torch.tensor([[1, 2, 3, 4]])  # four labels cannot fit in three frames
    for mode in MODES:
        loss = ctc_loss(logits.log_softmax(-1), targets, torch.tensor([3]), torch.tensor([4]), "sum", **mode)
        (g,) = torch.autograd.grad(loss, logits)
        assert loss.item() == 0.0 and torch.all(g == 0)


def test_vmappable_ctc_under_vmap_of_grad_equals_a_loop_over_speakers_with_torch_ctc():
    """What batched adaptation does: per-speaker weights, vmap over speakers of the gradient (impossible alignments
    and lengths differing between speakers included)."""
    g = torch.Generator().manual_seed(1)
    speakers, utts, frames, dim, classes, labels = 3, 4, 20, 5, 6, 4
    weights = torch.randn(speakers, dim, classes, generator=g)
    feats = torch.randn(speakers, utts, frames, dim, generator=g)
    targets = torch.randint(1, classes, (speakers, utts, labels), generator=g)
    in_lens = torch.randint(10, frames + 1, (speakers, utts), generator=g)
    tgt_lens = torch.randint(1, labels + 1, (speakers, utts), generator=g)
    in_lens[0, 0], tgt_lens[0, 0] = 2, 4  # cannot be aligned: zero loss and gradient

    def loss(w, x, y, n, m):
        return ctc_loss((x @ w).log_softmax(-1), y, n, m, vmappable=True)

    values = vmap(loss)(weights, feats, targets, in_lens, tgt_lens)
    grads = vmap(grad(loss))(weights, feats, targets, in_lens, tgt_lens)
    for s in range(speakers):
        w = weights[s].clone().requires_grad_()
        ref = F.ctc_loss((feats[s] @ w).log_softmax(-1).transpose(0, 1), targets[s], in_lens[s], tgt_lens[s],
                         zero_infinity=True)
        (ref_grad,) = torch.autograd.grad(ref, w)
        torch.testing.assert_close(values[s], ref.detach())
        torch.testing.assert_close(grads[s], ref_grad)


def test_gradcheck_and_gradgradcheck():
    logits, targets, in_len, tgt_len = random_batch(batch=3, frames=6, classes=4, labels=3, dtype=torch.float64)
    x = logits.clone().requires_grad_()

    def f(z):
        return ctc_loss(z.log_softmax(-1), targets, in_len, tgt_len, "mean", twice_differentiable=True)

    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


def test_second_derivative_through_an_inner_step_matches_finite_differences():
    """d/dw of L(w - lr * dL/dw), the quantity full MAML needs, against central differences."""
    torch.manual_seed(0)
    logits, targets, in_len, tgt_len = random_batch(batch=2, frames=8, classes=5, labels=3, dtype=torch.float64)
    feats = torch.randn(2, 8, 3, dtype=torch.float64)
    w = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)

    def loss(weights):
        return ctc_loss((feats @ weights).log_softmax(-1), targets, in_len, tgt_len, twice_differentiable=True)

    def adapted_loss(weights):
        (g,) = torch.autograd.grad(loss(weights), weights, create_graph=True)
        return loss(weights - 0.5 * g)

    (analytic,) = torch.autograd.grad(adapted_loss(w), w)
    numeric = torch.zeros_like(w)
    eps = 1e-6
    for i in range(3):
        for j in range(5):
            d = torch.zeros_like(w)
            d[i, j] = eps
            plus = adapted_loss((w + d).detach().requires_grad_()).item()
            minus = adapted_loss((w - d).detach().requires_grad_()).item()
            numeric[i, j] = (plus - minus) / (2 * eps)
    torch.testing.assert_close(analytic, numeric, rtol=1e-5, atol=1e-7)


def test_greedy_decode_merges_repeats_and_drops_blanks():
    best = torch.tensor([[0, 3, 3, 0, 3, 5, 5, 2, 0], [4, 4, 0, 1, 1, 1, 0, 0, 0]])
    log_probs = torch.nn.functional.one_hot(best, 6).float().log()
    assert greedy_decode(log_probs, torch.tensor([9, 5])) == [[3, 3, 5, 2], [4, 1]]
