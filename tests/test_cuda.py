"""The GPU path: training (bf16 autocast), meta-training (loop and batched, first and second order), batched
adaptation and decoding on CUDA. Skipped where there is no GPU; the CPU tests prove the same code's results."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_base, torchrun_meta_train

if not torch.cuda.is_available():
    pytest.skip("no CUDA device: the GPU path is checked on a machine with one", allow_module_level=True)

from speechmeta.adapt import adapt_speakers, load_adapter
from speechmeta.checkpoint import load_checkpoint
from speechmeta.config import load_config
from speechmeta.decode import decode
from speechmeta.meta.batched import batched_adapt
from speechmeta.meta.inner import adapt, ctc_task_loss
from speechmeta.meta_train import meta_train
from speechmeta.model.adapt_params import adapted_names, attach_speaker_params, split_params
from speechmeta.model.conformer import ConformerCTC, ModelConfig
from speechmeta.train import load_model


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    out = tmp_path_factory.mktemp("cuda")
    result = tiny_base(out, 4, 1, 5, ["train.epochs=2", "train.device=auto"])
    return out, result


def test_train_runs_on_cuda_with_bf16(base):
    out, result = base
    assert torch.isfinite(torch.tensor(result["valid_loss"]))
    assert load_checkpoint(out / "base" / "epoch-2.pt")["step"] > 0
    model, *_ = load_model(out / "base" / "average.pt", "cpu")  # a model trained on GPU serves on CPU
    log_probs, _ = model(torch.randn(1, 40, 80), torch.tensor([40]))
    assert torch.isfinite(log_probs).all()


@pytest.mark.parametrize("algorithm,batched", [("fomaml", False), ("fomaml", True), ("maml", True),
                                               ("metasgd", True), ("metasgd", None)])
def test_meta_train_runs_on_cuda(base, tmp_path, monkeypatch, algorithm, batched):
    out, _ = base
    import speechmeta.meta_train as mt

    calls = []
    real = mt.batched_meta_gradient
    monkeypatch.setattr(mt, "batched_meta_gradient", lambda *a, **k: calls.append(1) or real(*a, **k))
    cfg = load_config(overrides=["model.size=tiny", f"meta.algorithm={algorithm}", "meta.param_set=lhuc",
                                 "meta.meta_steps=2", "meta.speakers_per_batch=2", "meta.shots=2", "meta.query=2",
                                 "meta.inner_steps=2", "meta.eval_every=1", "meta.eval_tasks=1", "meta.device=cuda",
                                 *([f"meta.batched={str(batched).lower()}"] if batched is not None else [])])
    result = meta_train(cfg, out / "base" / "average.pt", out / "train", out / "test", tmp_path, progress=False)
    assert torch.isfinite(torch.tensor([result["query_loss_before"], result["query_loss_after"]])).all()
    assert bool(calls) == (batched is not False)  # unset: batched on CUDA


def test_decode_runs_on_cuda(base, tmp_path):
    out, _ = base
    decode(out / "base" / "average.pt", out / "test", tmp_path, device="cuda")
    assert (tmp_path / "hyp.txt").read_text().strip()


@pytest.mark.parametrize("vmappable,bf16", [(False, False), (True, False), (True, True)])
def test_batched_adapt_equals_loop_on_cuda(vmappable, bf16):
    """bf16: what `speechmeta adapt-eval` runs on a GPU (the subsampling run under vmap once escaped autocast)."""
    torch.manual_seed(0)
    model = attach_speaker_params(ConformerCTC(ModelConfig(size="tiny", dropout=0.0), 8), "lhuc").cuda().eval()
    fast, frozen = split_params(model, adapted_names(model, "lhuc"))
    lrs = {k: torch.tensor(0.5, device="cuda") for k in fast}
    loss = ctc_task_loss(model, frozen, twice_differentiable=not vmappable, vmappable=vmappable, bf16=bf16)
    tol = {"rtol": 5e-2, "atol": 5e-2} if bf16 else {"rtol": 1e-3, "atol": 1e-5}
    g = torch.Generator().manual_seed(1)
    supports = [{"feats": torch.randn(2, 50, 80, generator=g).cuda(), "feat_lens": torch.tensor([50, 40]).cuda(),
                 "targets": torch.randint(3, 8, (2, 3), generator=g).cuda(), "target_lens": torch.tensor([3, 2]).cuda()}
                for _ in range(4)]
    adapted = batched_adapt(loss, fast, lrs, supports, 3)
    for s, support in enumerate(supports):
        one = adapt(loss, fast, support, lrs, 3, first_order=True)
        for k in fast:
            torch.testing.assert_close(adapted[k][s], one[k], **tol)


def test_adapt_speakers_batched_in_bf16_equals_one_after_another(base):
    """What `speechmeta adapt-eval` runs on a GPU: all test speakers in one vmap pass under bf16 autocast (it once
    failed there, the subsampling under vmap escaping autocast)."""
    out, _ = base
    ad = load_adapter(out / "base" / "average.pt", "lhuc", 3, 0.5, device="cuda")
    g = torch.Generator().manual_seed(2)
    supports = [{"feats": torch.randn(3, 60, 80, generator=g), "feat_lens": torch.tensor([60, 50, 40]),
                 "targets": torch.randint(3, 8, (3, 4), generator=g), "target_lens": torch.tensor([4, 3, 2])}
                for _ in range(3)]
    batched = adapt_speakers(ad, supports)  # the default on CUDA: one vmap pass
    loop = adapt_speakers(ad, supports, batched=False)
    assert any(float((b[k] - ad.fast[k]).abs().max()) > 1e-3 for b in batched for k in b)
    for b, one in zip(batched, loop, strict=True):
        for k in one:
            torch.testing.assert_close(b[k], one[k], rtol=5e-2, atol=5e-2)


def test_torchrun_meta_train_on_gpus(base, tmp_path):
    """Two torchrun processes meta-training on CUDA: NCCL, one GPU each; with one GPU, a clear error instead (two
    processes cannot share it under NCCL). CPU meta-training under torchrun on this machine (gloo although a GPU is
    present) is tests/test_meta_train.py::test_two_gloo_processes_equal_one."""
    out, _ = base
    overrides = ["meta.algorithm=fomaml", "meta.param_set=lhuc", "meta.meta_steps=2", "meta.speakers_per_batch=2",
                 "meta.shots=2", "meta.query=2", "meta.inner_steps=2", "meta.eval_every=10", "meta.eval_tasks=1",
                 "meta.checkpoint_every=0", "meta.device=cuda", "meta.keep=last"]
    run = torchrun_meta_train(out, tmp_path / "two", 2, overrides)
    if torch.cuda.device_count() >= 2:
        assert run.returncode == 0, run.stderr[-3000:]
        state = load_checkpoint(tmp_path / "two" / "meta.pt")
        assert all(torch.isfinite(v).all() for v in state["model"].values())
    else:
        assert run.returncode != 0
        assert "has no GPU of its own (1 visible)" in run.stderr, run.stderr[-3000:]
