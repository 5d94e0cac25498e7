"""Parameter sets: LHUC and adapters leave the model unchanged at initialization and are separate from the base
weights; each set names the parameters it should."""

from __future__ import annotations

import pytest
import torch

from speechmeta.meta.inner import adapt, ctc_task_loss
from speechmeta.model.adapt_params import adapted_names, attach_speaker_params, split_params
from speechmeta.model.conformer import ConformerCTC, ModelConfig


def tiny() -> ConformerCTC:
    torch.manual_seed(0)
    return ConformerCTC(ModelConfig(size="tiny", dropout=0.0), 8).eval()


@pytest.mark.parametrize("param_set", ["lhuc", "adapter"])
def test_speaker_params_change_nothing_at_init_and_stay_out_of_the_base(param_set):
    model = tiny()
    base_keys = set(model.state_dict())
    feats, lens = torch.randn(2, 50, 80), torch.tensor([50, 41])
    before, _ = model(feats, lens)
    attach_speaker_params(model, param_set)
    after, _ = model(feats, lens)
    torch.testing.assert_close(after, before, rtol=0, atol=0)
    names = adapted_names(model, param_set)
    assert names and all(".speaker." in n for n in names) and base_keys.isdisjoint(names)
    assert sum(model.state_dict()[n].numel() for n in names) < 0.2 * sum(p.numel() for p in model.parameters())


def test_parameter_sets_name_what_they_should():
    model = attach_speaker_params(tiny(), "lhuc")
    assert all(".speaker." not in n for n in adapted_names(model, "all"))
    assert all(n.endswith(".bias") for n in adapted_names(model, "bias"))
    assert all("norm." in n for n in adapted_names(model, "norm"))
    encoder = adapted_names(model, "encoder")
    assert set(adapted_names(model, "all")) - set(encoder) == {n for n, _ in model.subsampling.named_parameters(
        prefix="subsampling")} and encoder
    assert len(adapted_names(model, "lhuc")) == 3 * len(model.blocks)
    with pytest.raises(ValueError, match="no 'adapter' parameters"):
        adapted_names(model, "adapter")
    with pytest.raises(ValueError, match="unknown parameter set 'weights'"):
        attach_speaker_params(model, "weights")


def test_adapting_lhuc_lowers_the_support_loss():
    model = attach_speaker_params(tiny(), "lhuc")
    fast, frozen = split_params(model, adapted_names(model, "lhuc"))
    batch = {"feats": torch.randn(2, 60, 80), "feat_lens": torch.tensor([60, 52]),
             "targets": torch.tensor([[3, 4, 5], [6, 7, 0]]), "target_lens": torch.tensor([3, 2])}
    loss = ctc_task_loss(model, frozen)
    adapted = adapt(loss, fast, batch, {k: 1.0 for k in fast}, steps=3, first_order=True)
    assert loss(adapted, batch) < loss(fast, batch)
    assert all(not torch.equal(adapted[k], fast[k]) for k in fast)


def test_adapter_init_does_not_depend_on_the_global_rng():
    """The adapter baseline must start from the same point whatever drew random numbers before it."""
    weights = []
    for draws in (0, 7):
        torch.manual_seed(123)
        torch.rand(draws)
        model = attach_speaker_params(ConformerCTC(ModelConfig(size="tiny"), 10), "adapter", 8)
        weights.append({n: p.detach().clone() for n, p in model.named_parameters() if ".speaker." in n})
    assert weights[0].keys() == weights[1].keys() and weights[0]
    assert all(torch.equal(weights[0][n], weights[1][n]) for n in weights[0])


@pytest.mark.parametrize("param_set", ["lhuc", "adapter", "all", "encoder"])
def test_inner_steps_reuse_the_frozen_subsampling_only_when_it_is_frozen(param_set):
    """adapt() runs the subsampling once when none of its weights adapt: the same steps as running it every step."""
    model = attach_speaker_params(tiny(), param_set) if param_set in ("lhuc", "adapter") else tiny()
    fast, frozen = split_params(model, adapted_names(model, param_set))
    batch = {"feats": torch.randn(2, 60, 80), "feat_lens": torch.tensor([60, 52]),
             "targets": torch.tensor([[3, 4, 5], [6, 7, 0]]), "target_lens": torch.tensor([3, 2])}
    loss = ctc_task_loss(model, frozen)
    assert ("subsampled" in loss.prepare(batch)) == (param_set != "all")
    every_step = dict(fast)
    for _ in range(3):  # the loop of adapt(), written out with a loss that recomputes everything
        g = torch.func.grad(lambda f: loss(f, batch))(every_step)
        every_step = {k: every_step[k] - 0.5 * g[k] for k in every_step}
    adapted = adapt(loss, fast, batch, {k: 0.5 for k in fast}, steps=3, first_order=True)
    assert all(not torch.equal(adapted[k], fast[k]) for k in fast if ".speaker.adapter_down" not in k)
    for k in fast:
        torch.testing.assert_close(adapted[k], every_step[k], rtol=1e-5, atol=1e-6)


def test_preparing_a_batch_twice_reuses_the_first_subsampling():
    model = attach_speaker_params(tiny(), "lhuc")
    _, frozen = split_params(model, adapted_names(model, "lhuc"))
    batch = {"feats": torch.randn(2, 60, 80), "feat_lens": torch.tensor([60, 52])}
    once = ctc_task_loss(model, frozen).prepare(batch)
    assert ctc_task_loss(model, frozen).prepare(once)["subsampled"] is once["subsampled"]
