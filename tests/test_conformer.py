"""Conformer CTC: sizes, shapes, padding invariance, and what meta-learning needs (functional calls, 2nd order)."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call, grad

from speechmeta.model.conformer import ConformerCTC, ModelConfig, num_params, output_lengths
from speechmeta.model.ctc import ctc_loss


def tiny(vocab: int = 10, **kw) -> ConformerCTC:
    torch.manual_seed(0)
    return ConformerCTC(ModelConfig(size="tiny", **kw), vocab)


@pytest.mark.parametrize("size,low,high", [("tiny", 0, 0.5e6), ("small", 2e6, 5e6), ("base", 20e6, 30e6)])
def test_named_sizes(size, low, high):
    n = num_params(ConformerCTC(ModelConfig(size=size), 30))
    assert low <= n <= high, n


def test_shapes_and_lengths():
    model = tiny().eval()
    log_probs, lengths = model(torch.randn(3, 101, 80), torch.tensor([101, 60, 7]))
    assert log_probs.shape == (3, 24, 10)
    assert lengths.tolist() == output_lengths(torch.tensor([101, 60, 7])).tolist() == [24, 14, 1]
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(3, 24))


def test_padding_does_not_change_real_frames():
    model = tiny().eval()
    a, b = torch.randn(1, 57, 80), torch.randn(1, 120, 80)
    alone, len_alone = model(a, torch.tensor([57]))
    padded = torch.cat([torch.cat([a, 100 * torch.randn(1, 63, 80)], dim=1), b])  # garbage in the padding
    batch, lens = model(padded, torch.tensor([57, 120]))
    n = len_alone.item()
    assert lens[0].item() == n
    torch.testing.assert_close(batch[0, :n], alone[0], rtol=1e-4, atol=1e-4)


def test_config_errors():
    with pytest.raises(ValueError, match="model.size must be one of"):
        ConformerCTC(ModelConfig(size="huge"), 5)
    with pytest.raises(ValueError, match="heads of even size"):
        ConformerCTC(ModelConfig(size="tiny", d_model=66, num_heads=2), 5)
    with pytest.raises(ValueError, match="subsampling_channels must be >= 0"):
        ConformerCTC(ModelConfig(size="tiny", subsampling_channels=-8), 5)


def test_subsampling_channels():
    """0 keeps d_model channels (every model trained before the option); a width of its own changes only the
    subsampling, and the model still masks padding."""
    default, narrow = tiny(), tiny(subsampling_channels=16)
    assert default.subsampling.conv2.weight.shape == (64, 64, 3, 3)
    assert narrow.subsampling.conv1.weight.shape == (16, 1, 3, 3)
    assert narrow.subsampling.conv2.weight.shape == (16, 16, 3, 3)
    assert narrow.subsampling.proj.weight.shape == (64, 16 * 19)
    assert {k: v.shape for k, v in default.blocks.state_dict().items()} == \
        {k: v.shape for k, v in narrow.blocks.state_dict().items()}
    a = torch.randn(1, 57, 80)
    alone, _ = narrow.eval()(a, torch.tensor([57]))
    batch, _ = narrow(torch.cat([torch.cat([a, torch.randn(1, 43, 80)], dim=1), torch.randn(1, 100, 80)]),
                      torch.tensor([57, 100]))
    torch.testing.assert_close(batch[0, :alone.shape[1]], alone[0], rtol=1e-4, atol=1e-4)


def test_second_order_gradient_through_functional_call():
    """What full MAML does: a gradient step inside the loss, differentiated again (math attention, ops CTC)."""
    model = tiny(dropout=0.0)
    params = {k: v.detach() for k, v in model.named_parameters()}
    feats, feat_lens = torch.randn(2, 40, 80), torch.tensor([40, 33])
    targets, target_lens = torch.tensor([[1, 2, 3], [4, 5, 0]]), torch.tensor([3, 2])

    def loss(p):
        log_probs, lens = functional_call(model, p, (feats, feat_lens))
        return ctc_loss(log_probs, targets, lens, target_lens, twice_differentiable=True)

    def adapted_loss(p):
        g = grad(loss)(p)
        return loss({k: p[k] - 0.1 * g[k] for k in p})

    meta_grad = grad(adapted_loss)(params)
    first_order = grad(loss)(params)
    assert set(meta_grad) == set(params)
    assert all(torch.isfinite(g).all() for g in meta_grad.values())
    differs = sum(not torch.allclose(meta_grad[k], first_order[k]) for k in params)
    assert differs > len(params) // 2  # the second-order terms are really there
