"""Meta-learning core: each algorithm's meta-gradient against its definition (toy quadratic model), second-order
MAML against finite differences with the CTC loss, inner_steps=0, and the speaker task sampler."""

from __future__ import annotations

import pytest
import torch

from speechmeta.data.tasks import SpeakerTasks
from speechmeta.meta.algorithms import autograd_gradient, merge_batches, meta_gradient
from speechmeta.meta.inner import adapt, adapt_test_time
from speechmeta.model.ctc import ctc_loss


@pytest.fixture(autouse=True)
def float64():
    """Exact comparisons need double precision; restored afterwards for the other test modules."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def toy_batch(n: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 3, generator=g)
    return {"feats": x, "targets": torch.randn(n, 1, generator=g), "feat_lens": torch.ones(n, dtype=torch.long),
            "target_lens": torch.ones(n, dtype=torch.long)}


def toy_loss(p: dict, batch: dict) -> torch.Tensor:
    pred = batch["feats"][:, 0] @ p["w"] + p["b"]
    return ((pred - batch["targets"][:, 0]) ** 2).mean()


@pytest.fixture
def toy():
    theta = {"w": torch.tensor([0.3, -0.2, 0.5]), "b": torch.tensor(0.1)}
    lrs = {"w": torch.tensor([0.1, 0.05, 0.2]), "b": torch.tensor(0.1)}
    return theta, lrs, toy_batch(6, 1), toy_batch(5, 2)


def grad_at(p: dict, batch: dict) -> dict:
    leaves = {k: v.clone().requires_grad_() for k, v in p.items()}
    gs = torch.autograd.grad(toy_loss(leaves, batch), list(leaves.values()))
    return dict(zip(leaves, gs, strict=True))


def step(p: dict, lrs: dict, batch: dict) -> dict:
    g = grad_at(p, batch)
    return {k: p[k] - lrs[k] * g[k] for k in p}


def test_fomaml_is_the_query_gradient_at_the_adapted_parameters(toy):
    theta, lrs, support, query = toy
    phi = step(step(theta, lrs, support), lrs, support)
    g, g_lrs = meta_gradient("fomaml", toy_loss, theta, lrs, support, query, steps=2)
    expected = grad_at(phi, query)
    assert g_lrs is None
    for k in theta:
        torch.testing.assert_close(g[k], expected[k])


def test_reptile_is_theta_minus_adapted(toy):
    theta, lrs, support, query = toy
    both = merge_batches(support, query)
    phi = step(step(step(theta, lrs, both), lrs, both), lrs, both)
    g, _ = meta_gradient("reptile", toy_loss, theta, lrs, support, query, steps=3)
    for k in theta:
        torch.testing.assert_close(g[k], theta[k] - phi[k])


def test_first_order_metasgd_rate_gradient(toy):
    """One step: dL_q/dα = -∇L_q(φ) ⊙ ∇L_s(θ) when ∇L_s is held constant; θ gets FOMAML's gradient."""
    theta, lrs, support, query = toy
    g, g_lrs = meta_gradient("metasgd", toy_loss, theta, lrs, support, query, steps=1, first_order=True)
    g_s, g_q = grad_at(theta, support), grad_at(step(theta, lrs, support), query)
    for k in theta:
        torch.testing.assert_close(g_lrs[k], -g_q[k] * g_s[k])
        torch.testing.assert_close(g[k], g_q[k])


def test_maml_one_step_closed_form(toy):
    """For a quadratic loss, φ = θ - α∇L_s(θ) and dL_q(φ)/dθ = (I - α H_s) ∇L_q(φ)."""
    theta, lrs, support, query = toy
    g, _ = meta_gradient("maml", toy_loss, theta, lrs, support, query, steps=1)
    flat = torch.cat([theta["w"], theta["b"].view(1)])

    def loss_flat(z: torch.Tensor, batch: dict) -> torch.Tensor:
        return toy_loss({"w": z[:3], "b": z[3]}, batch)

    hessian = torch.autograd.functional.hessian(lambda z: loss_flat(z, support), flat)
    alpha = torch.cat([lrs["w"], lrs["b"].view(1)])
    phi = flat - alpha * torch.autograd.functional.jacobian(lambda z: loss_flat(z, support), flat)
    g_q = torch.autograd.functional.jacobian(lambda z: loss_flat(z, query), phi)
    expected = (torch.eye(4) - alpha[:, None] * hessian).T @ g_q
    torch.testing.assert_close(torch.cat([g["w"], g["b"].view(1)]), expected)


def test_second_order_maml_matches_finite_differences_with_ctc():
    """A tiny CTC model (linear layer over features) adapted for 2 steps; the MAML meta-gradient of the query loss
    equals central finite differences."""
    gen = torch.Generator().manual_seed(0)

    def ctc_batch(seed: int) -> dict:
        g = torch.Generator().manual_seed(seed)
        return {"feats": torch.randn(2, 7, 4, generator=g), "feat_lens": torch.tensor([7, 6]),
                "targets": torch.tensor([[1, 2, 1], [3, 3, 0]]), "target_lens": torch.tensor([3, 2])}

    def loss(p: dict, batch: dict) -> torch.Tensor:
        log_probs = (batch["feats"] @ p["w"] + p["b"]).log_softmax(-1)
        return ctc_loss(log_probs, batch["targets"], batch["feat_lens"], batch["target_lens"],
                        twice_differentiable=True)

    theta = {"w": 0.5 * torch.randn(4, 4, generator=gen), "b": torch.zeros(4)}
    lrs = {"w": torch.tensor(0.3), "b": torch.tensor(0.3)}
    support, query = ctc_batch(1), ctc_batch(2)
    g, _ = meta_gradient("maml", loss, theta, lrs, support, query, steps=2)

    def objective(p: dict) -> float:
        return loss(adapt(loss, p, support, lrs, 2, True), query).item()

    eps = 1e-6
    for k, index in [("w", (0, 1)), ("w", (3, 2)), ("b", (1,)), ("b", (3,))]:
        plus = {n: v.clone() for n, v in theta.items()}
        minus = {n: v.clone() for n, v in theta.items()}
        plus[k][index] += eps
        minus[k][index] -= eps
        numeric = (objective(plus) - objective(minus)) / (2 * eps)
        assert g[k][index].item() == pytest.approx(numeric, rel=1e-5, abs=1e-8), (k, index)
    first_order, _ = meta_gradient("fomaml", loss, theta, lrs, support, query, steps=2)
    assert not torch.allclose(first_order["w"], g["w"])  # the second-order terms matter here


@pytest.mark.parametrize("algorithm,first_order", [("fomaml", True), ("metasgd", True), ("maml", False),
                                                   ("metasgd", False)])
@pytest.mark.parametrize("scalar_rates", [False, True])
def test_autograd_gradient_equals_meta_gradient(toy, algorithm, first_order, scalar_rates):
    """The speaker loop of meta-training computes the meta-gradients without torch.func: the same gradients for the
    initialization and the rates (per-element and per-tensor rates), first and second order."""
    theta, lrs, support, query = toy
    if scalar_rates:
        lrs = {"w": torch.tensor(0.1), "b": torch.tensor(0.05)}
    g, g_lrs = autograd_gradient(algorithm, toy_loss, theta, lrs, support, query, steps=3, first_order=first_order)
    expected, expected_lrs = meta_gradient(algorithm, toy_loss, theta, lrs, support, query, steps=3,
                                           first_order=first_order)
    for k in theta:
        torch.testing.assert_close(g[k], expected[k], rtol=1e-10, atol=1e-12)
    if algorithm != "metasgd":
        assert g_lrs is None and expected_lrs is None
    else:
        for k in lrs:
            assert g_lrs[k].shape == lrs[k].shape
            torch.testing.assert_close(g_lrs[k], expected_lrs[k], rtol=1e-10, atol=1e-12)
            assert g_lrs[k].abs().sum() > 0
    if algorithm == "maml":  # second order differs from first order here: the test can tell them apart
        first, _ = meta_gradient("fomaml", toy_loss, theta, lrs, support, query, steps=3)
        assert max(float((g[k] - first[k]).abs().max()) for k in theta) > 1e-6
    with pytest.raises(ValueError, match="reptile"):
        autograd_gradient("reptile", toy_loss, theta, lrs, support, query, steps=1)


def test_zero_inner_steps_is_the_base_model(toy):
    theta, lrs, support, query = toy
    for algorithm in ("fomaml", "maml", "metasgd"):
        g, _ = meta_gradient(algorithm, toy_loss, theta, lrs, support, query, steps=0)
        expected = grad_at(theta, query)
        for k in theta:
            torch.testing.assert_close(g[k], expected[k])
    assert adapt(toy_loss, theta, support, lrs, 0, True) is theta


def test_speaker_tasks():
    spk2utt = {f"s{i}": [f"s{i}-u{j}" for j in range(n)] for i, n in enumerate([12, 10, 9, 4, 15])}
    tasks = SpeakerTasks(spk2utt, shots=5, query=4, speakers_per_batch=3, seed=7)
    assert tasks.skipped == {"s3": "4 utterances, a task needs 9 (5 support + 4 query)"}
    batch = tasks.meta_batch(0)
    assert len({t.spk for t in batch}) == 3 and "s3" not in {t.spk for t in batch}
    for t in batch:
        assert len(t.support) == 5 and len(t.query) == 4 and not set(t.support) & set(t.query)
        assert all(u.startswith(t.spk + "-") for u in t.support + t.query)
    assert batch == SpeakerTasks(spk2utt, 5, 4, 3, seed=7).meta_batch(0) != tasks.meta_batch(1)
    with pytest.raises(ValueError, match="only 4 speakers have 9 utterances"):
        SpeakerTasks(spk2utt, 5, 4, 5)


def test_speaker_tasks_with_several_k():
    spk2utt = {f"s{i}": [f"s{i}-u{j}" for j in range(n)] for i, n in enumerate([20, 16, 14, 12])}
    tasks = SpeakerTasks(spk2utt, shots=[2, 10], query=4, speakers_per_batch=2, seed=3)
    assert tasks.skipped == {"s3": "12 utterances, a task needs 14 (10 support + 4 query)"}  # the largest K decides
    drawn = set()
    for i in range(20):
        batch = tasks.meta_batch(i)
        assert batch == tasks.meta_batch(i)  # a function of (seed, index): a resumed run draws the same
        ks = {len(t.support) for t in batch}
        assert len(ks) == 1 and all(len(t.query) == 4 and not set(t.support) & set(t.query) for t in batch)
        drawn |= ks
    assert drawn == {2, 10}
    one = SpeakerTasks(spk2utt, shots=[5], query=4, speakers_per_batch=2, seed=3)
    assert one.meta_batch(4) == SpeakerTasks(spk2utt, 5, 4, 2, seed=3).meta_batch(4)


def test_test_time_adaptation_equals_the_functional_loop(toy):
    theta, lrs, support, _ = toy
    expected = adapt(toy_loss, theta, support, lrs, 3, True)
    got = adapt_test_time(toy_loss, theta, support, lrs, 3)
    for k in theta:
        torch.testing.assert_close(got[k], expected[k], rtol=1e-12, atol=1e-12)
    assert not got["w"].requires_grad  # nothing is left attached to a graph
