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
    for layers in ([2], [0], [1, 1]):  # tiny has 2 blocks: only block 1 is intermediate
        with pytest.raises(ValueError, match=r"inter_layers must be distinct blocks 1\.\.1"):
            ConformerCTC(ModelConfig(size="tiny", inter_layers=layers), 5)
    with pytest.raises(ValueError, match="set them too"):
        ConformerCTC(ModelConfig(size="tiny", self_condition=True), 5)


def test_intermediate_ctc_outputs():
    """The intermediate log-probs come from the shared norm and head, with no weights of their own, and do not
    change the output; `forward` leaves them out."""
    plain, inter = tiny(), tiny(inter_layers=[1])
    assert plain.state_dict().keys() == inter.state_dict().keys()
    feats, lens = torch.randn(2, 61, 80), torch.tensor([61, 45])
    out, out_lens, mids = inter.eval().forward_inter(feats, lens)
    torch.testing.assert_close(out, plain.eval()(feats, lens)[0])
    assert len(mids) == 1 and mids[0].shape == out.shape and not torch.allclose(mids[0], out)
    expected = inter.head(inter.final_norm(inter.blocks[0](inter.subsampling(feats),
                                                           torch.arange(out.shape[1]) < out_lens[:, None])))
    torch.testing.assert_close(mids[0], expected.log_softmax(-1))
    assert inter.forward_inter(feats, lens, keep_inter=False)[2] == []


def test_self_conditioning():
    """Zero at first (a model trained without it computes the same), then the intermediate posteriors feed the
    next block; padding still changes no real frame, and full MAML's second order reaches the new weights."""
    plain, cond = tiny(dropout=0.0).eval(), tiny(dropout=0.0, inter_layers=[1], self_condition=True).eval()
    assert set(cond.state_dict()) - set(plain.state_dict()) == {"condition.1.weight", "condition.1.bias"}
    feats, lens = torch.randn(2, 61, 80), torch.tensor([61, 45])
    torch.testing.assert_close(cond(feats, lens)[0], plain(feats, lens)[0])
    with torch.no_grad():
        cond.condition["1"].weight.normal_()
    out, out_lens = cond(feats, lens)
    assert not torch.allclose(out, plain(feats, lens)[0])
    alone, _ = cond(feats[1:, :45], lens[1:])
    torch.testing.assert_close(out[1, :out_lens[1]], alone[0], rtol=1e-4, atol=1e-4)
    params = {k: v.detach() for k, v in cond.named_parameters()}
    targets, target_lens = torch.tensor([[1, 2, 3], [4, 5, 0]]), torch.tensor([3, 2])

    def loss(p):
        log_probs, n = functional_call(cond, p, (feats, lens))
        return ctc_loss(log_probs, targets, n, target_lens, twice_differentiable=True)

    meta_grad = grad(lambda p: loss({k: p[k] - 0.1 * grad(loss)(p)[k] for k in p}))(params)
    assert meta_grad["condition.1.weight"].abs().sum() > 0


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
