"""The model's dropout: the rate and scale it promises, its gradient, eval mode, seeds, and torch.func/vmap."""

from __future__ import annotations

import pytest
import torch
from torch.func import grad, vmap

from speechmeta.model.dropout import Dropout


@pytest.mark.parametrize("p", [0.1, 0.2, 0.5])
def test_drops_at_the_rate_and_keeps_the_mean(p):
    torch.manual_seed(0)
    drop = Dropout(p).train()
    x = torch.ones(1000, 1000)
    y = drop(x)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - p) < 0.002, dropped  # 1e6 elements: 4 standard deviations at p = 0.5 (seeded)
    kept = y[y != 0]
    torch.testing.assert_close(kept, torch.full_like(kept, 1 / (1 - p)), rtol=1e-4, atol=0)
    assert abs(y.mean().item() - 1.0) < 0.01


def test_masks_are_independent_of_position():
    """Each 64-bit draw feeds four neighbouring elements: their drops must not be correlated."""
    torch.manual_seed(1)
    y = Dropout(0.5).train()(torch.ones(400_000)).view(-1, 4) == 0
    for i in range(4):
        for j in range(i + 1, 4):
            both = (y[:, i] & y[:, j]).float().mean().item()
            assert abs(both - 0.25) < 0.005, (i, j, both)


def test_gradient_is_the_mask_times_the_scale():
    torch.manual_seed(0)
    x = torch.randn(64, 33, requires_grad=True)
    y = Dropout(0.3).train()(x)
    y.sum().backward()
    scale = 65536 / (65536 - 19661)  # 19661 = round(0.3 * 65536) of the 16-bit values drop an element
    torch.testing.assert_close(x.grad, (y.detach() != 0).float() * scale)
    torch.testing.assert_close(y.detach(), x.detach() * x.grad)


def test_eval_mode_and_zero_rate_are_the_identity():
    x = torch.randn(5, 7)
    assert Dropout(0.4).eval()(x) is x
    assert Dropout(0.0).train()(x) is x
    assert torch.equal(Dropout(1.0).train()(x), torch.zeros_like(x))
    with pytest.raises(ValueError, match=r"dropout probability must be in \[0, 1\], got 1.5"):
        Dropout(1.5)


def test_same_seed_same_mask_and_other_dtypes():
    drop = Dropout(0.1).train()
    x = torch.randn(3, 50, 20)
    torch.manual_seed(7)
    a = drop(x)
    torch.manual_seed(7)
    assert torch.equal(a, drop(x))
    assert not torch.equal(a, drop(x))  # the generator moved on
    assert drop(x.bfloat16()).dtype == torch.bfloat16
    assert drop(torch.randn(0, 4)).shape == (0, 4)


def test_under_vmap_each_speaker_draws_its_own_mask():
    torch.manual_seed(0)
    drop = Dropout(0.5).train()
    x = torch.ones(8, 10, 16)
    y = vmap(drop, randomness="different")(x)
    masks = (y == 0).flatten(1)
    assert len({tuple(m.tolist()) for m in masks}) == 8
    assert abs(masks.float().mean().item() - 0.5) < 0.05
    g = vmap(grad(lambda v: drop(v).sum()), randomness="different")(x)
    assert set(g.unique().tolist()) <= {0.0, 2.0}
