"""Batched speakers (vmap over a leading speaker dimension) equal the per-speaker loop."""

from __future__ import annotations

import pytest
import torch

from speechmeta.meta.algorithms import autograd_gradient, meta_gradient
from speechmeta.meta.batched import batched_adapt, batched_meta_gradient
from speechmeta.meta.inner import adapt, ctc_task_loss
from speechmeta.model.adapt_params import adapted_names, attach_speaker_params, split_params
from speechmeta.model.conformer import ConformerCTC, ModelConfig


def batch(seed: int, utts: int = 2) -> dict:
    g = torch.Generator().manual_seed(seed)
    lens = torch.randint(30, 60, (utts,), generator=g)
    target_lens = torch.randint(1, 4, (utts,), generator=g)
    targets = torch.randint(3, 8, (utts, int(target_lens.max())), generator=g)
    return {"feats": torch.randn(utts, int(lens.max()), 80, generator=g), "feat_lens": lens, "targets": targets,
            "target_lens": target_lens}


@pytest.mark.parametrize("algorithm,param_set", [("fomaml", "lhuc"), ("maml", "lhuc"), ("metasgd", "bias"),
                                                 ("reptile", "adapter")])
def test_batched_equals_loop(algorithm, param_set):
    torch.manual_seed(0)
    model = attach_speaker_params(ConformerCTC(ModelConfig(size="tiny", dropout=0.0), 8), param_set).eval()
    fast, frozen = split_params(model, adapted_names(model, param_set))
    lrs = {k: torch.tensor(0.5) for k in fast}
    second_order = algorithm == "maml"  # what meta-train picks: the tensor-op CTC only where second order needs it
    loss = ctc_task_loss(model, frozen, twice_differentiable=second_order)  # the loop: F.ctc_loss where it can
    batched_loss = ctc_task_loss(model, frozen, twice_differentiable=second_order, vmappable=True)
    supports, queries = [batch(10 + s) for s in range(3)], [batch(20 + s) for s in range(3)]
    loop = [meta_gradient(algorithm, loss, fast, lrs, s, q, 2, True) for s, q in zip(supports, queries, strict=True)]
    g, g_lrs = batched_meta_gradient(algorithm, batched_loss, fast, lrs, supports, queries, 2, True)
    for k in fast:
        expected = torch.stack([one[0][k] for one in loop]).mean(0)
        torch.testing.assert_close(g[k], expected, rtol=1e-4, atol=1e-6)
    if algorithm == "metasgd":
        for k in fast:
            torch.testing.assert_close(g_lrs[k], torch.stack([one[1][k] for one in loop]).mean(0), rtol=1e-4,
                                       atol=1e-6)
    if algorithm != "reptile":  # meta-train's loop computes these by plain autograd
        for (g1, r1), (s, q) in zip(loop, zip(supports, queries, strict=True), strict=True):
            g2, r2 = autograd_gradient(algorithm, loss, fast, lrs, s, q, 2, first_order=True)
            for k in fast:
                torch.testing.assert_close(g2[k], g1[k], rtol=1e-4, atol=1e-6)
                if r1 is not None:
                    torch.testing.assert_close(r2[k], r1[k], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("param_set,chunk_size,ctc", [("lhuc", None, "vmappable"), ("adapter", 2, "vmappable"),
                                                      ("lhuc", None, "twice_differentiable")])
def test_batched_adapt_equals_loop(param_set, chunk_size, ctc):
    torch.manual_seed(0)
    model = attach_speaker_params(ConformerCTC(ModelConfig(size="tiny", dropout=0.0), 8), param_set).eval()
    fast, frozen = split_params(model, adapted_names(model, param_set))
    lrs = {k: torch.tensor(0.5) for k in fast}
    loss = ctc_task_loss(model, frozen)  # the loop: F.ctc_loss
    supports = [batch(30 + s) for s in range(3)]
    adapted = batched_adapt(ctc_task_loss(model, frozen, **{ctc: True}), fast, lrs, supports, 3, chunk_size=chunk_size)
    for s, support in enumerate(supports):
        one = adapt(loss, fast, support, lrs, 3, first_order=True)
        for k in fast:
            assert adapted[k].shape == (3, *fast[k].shape)
            torch.testing.assert_close(adapted[k][s], one[k], rtol=1e-4, atol=1e-5)
    assert any(not torch.equal(adapted[k][0], fast[k]) for k in fast)  # adaptation moved something


@pytest.mark.parametrize("algorithm", [None, "fomaml", "reptile"])
def test_batched_paths_run_the_subsampling_before_vmap(algorithm):
    """The subsampling runs once for all speakers, outside vmap: under vmap its convolutions escaped CUDA bf16
    autocast and batched adaptation failed on a GPU."""
    model = attach_speaker_params(ConformerCTC(ModelConfig(size="tiny", dropout=0.0), 8), "lhuc").eval()
    fast, frozen = split_params(model, adapted_names(model, "lhuc"))
    lrs = {k: torch.tensor(0.5) for k in fast}
    loss = ctc_task_loss(model, frozen, vmappable=True)
    computed, prepare = [], loss.prepare

    def spy(b: dict) -> dict:
        if "subsampled" not in b:  # a prepared batch is returned as it is
            computed.append(torch._C._functorch.is_batchedtensor(b["feats"]))
        return prepare(b)

    loss.prepare = spy
    supports, queries = [batch(40 + s) for s in range(2)], [batch(50 + s) for s in range(2)]
    if algorithm is None:
        batched_adapt(loss, fast, lrs, supports, 2)
    else:
        batched_meta_gradient(algorithm, loss, fast, lrs, supports, queries, 2, True)
    assert computed and not any(computed)
