"""meta-train end to end on a tiny base model: every algorithm runs, writes its curve and a meta checkpoint; the
batched (vmap) path and 2 torchrun processes (gloo) give the update of the plain single-process loop."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from conftest import tiny_base, torchrun_meta_train

from speechmeta.adapt import adapt_to_speaker, load_adapter, mean_rate
from speechmeta.checkpoint import load_checkpoint
from speechmeta.config import load_config
from speechmeta.data.augment import freq_warp
from speechmeta.data.datadir import DataDir
from speechmeta.meta_train import init_distributed, meta_train


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    out = tmp_path_factory.mktemp("meta")
    tiny_base(out, 4, 1, 5, ["model.dropout=0.0"])
    return out


@pytest.mark.parametrize("algorithm,param_set", [("fomaml", "lhuc"), ("reptile", "bias"), ("metasgd", "adapter"),
                                                 ("maml", "lhuc")])
def test_meta_train_runs_and_saves_the_rule(base, tmp_path, algorithm, param_set):
    cfg = load_config(overrides=["model.size=tiny", f"meta.algorithm={algorithm}", f"meta.param_set={param_set}",
                                 "meta.meta_steps=2", "meta.speakers_per_batch=2", "meta.shots=2", "meta.query=2",
                                 "meta.inner_steps=1", "meta.eval_every=1", "meta.eval_tasks=1",
                                 "meta.checkpoint_every=1", "meta.device=cpu", "meta.keep=last"])
    result = meta_train(cfg, base / "base" / "average.pt", base / "train", base / "test", tmp_path, progress=False)
    assert torch.isfinite(torch.tensor([result["query_loss_before"], result["query_loss_after"]])).all()
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [0, 1, 2]
    state = load_checkpoint(tmp_path / "meta.pt")
    assert state["meta"]["algorithm"] == algorithm and state["meta"]["param_set"] == param_set
    rates = torch.stack(list(state["meta"]["inner_lrs"].values()))
    assert torch.allclose(rates, torch.tensor(0.1)) != (algorithm == "metasgd")  # only Meta-SGD learns rates
    base_state = load_checkpoint(base / "base" / "average.pt")["model"]
    moved = [k for k, v in state["model"].items()
             if (k in base_state and not torch.equal(v, base_state[k]))
             or (("lhuc" in k or "adapter_up" in k) and bool(v.abs().sum() > 0))]  # these start at zero
    assert moved  # the meta-learned initialization moved away from where it started


def test_metasgd_rates_learn_at_rate_lr(base, tmp_path):
    cfg = load_config(overrides=["model.size=tiny", "meta.algorithm=metasgd", "meta.param_set=lhuc",
                                 "meta.meta_steps=1", "meta.speakers_per_batch=2", "meta.shots=2", "meta.query=2",
                                 "meta.inner_steps=1", "meta.eval_every=10", "meta.eval_tasks=1", "meta.device=cpu",
                                 "meta.checkpoint_every=0", "meta.keep=last", "meta.outer_lr=1e-6",
                                 "meta.rate_lr=0.01"])
    meta_train(cfg, base / "base" / "average.pt", base / "train", base / "test", tmp_path, progress=False)
    state = load_checkpoint(tmp_path / "meta.pt")
    moved = (torch.stack(list(state["meta"]["inner_lrs"].values())) - 0.1).abs()
    assert moved.max() == pytest.approx(0.01, rel=1e-3)  # Adam's first step is its step size: rate_lr, not outer_lr
    lhuc = [v for k, v in state["model"].items() if "lhuc" in k]
    assert lhuc and max(v.abs().max().item() for v in lhuc) <= 1.01e-6  # they start at zero and move by outer_lr


def test_metasgd_learns_one_rate_per_weight_and_adapts_with_them(base, tmp_path):
    cfg = load_config(overrides=meta_overrides("meta.algorithm=metasgd", "meta.rates=element", "meta.meta_steps=1",
                                               "meta.inner_steps=1", "meta.outer_lr=1e-6", "meta.rate_lr=0.01"))
    meta_train(cfg, base / "base" / "average.pt", base / "train", base / "test", tmp_path, progress=False)
    state = load_checkpoint(tmp_path / "meta.pt")
    rates = state["meta"]["inner_lrs"]
    assert {n: v.shape for n, v in rates.items()} == {n: state["model"][n].shape for n in rates}
    moved = torch.cat([(v - 0.1).flatten() for v in rates.values()])
    assert moved.abs().max() == pytest.approx(0.01, rel=1e-3)  # Adam's first step: rate_lr for each weight's rate
    assert (moved > 0).any() and (moved < 0).any()  # each weight's own gradient: some rates grow, others shrink
    ad = load_adapter(tmp_path / "meta.pt", "auto", device="cpu")
    assert ad.method == "metasgd" and all(ad.lrs[n].shape == ad.fast[n].shape for n in ad.fast)
    spk = DataDir.load(base / "test").spks[0]
    info = adapt_to_speaker(tmp_path / "meta.pt", base / "test", spk, tmp_path / "p.safetensors", k=2, device="cpu")
    assert info["lrs"] == {"mean": pytest.approx(float(moved.mean() + 0.1), rel=1e-5)}
    scaled = load_adapter(tmp_path / "meta.pt", "auto", lr=0.05, device="cpu")
    assert float(mean_rate(scaled.lrs)) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="only Meta-SGD learns its inner rates"):
        meta_train(load_config(overrides=["meta.algorithm=fomaml", "meta.rates=element"]), base / "base" /
                   "average.pt", base / "train", base / "test", tmp_path / "fomaml", progress=False)


def meta_overrides(*extra: str) -> list[str]:
    return ["meta.algorithm=fomaml", "meta.param_set=lhuc", "meta.meta_steps=2", "meta.speakers_per_batch=2",
            "meta.shots=2", "meta.query=2", "meta.inner_steps=2", "meta.eval_every=10", "meta.eval_tasks=1",
            "meta.checkpoint_every=0", "meta.device=cpu", "meta.keep=last", *extra]


def assert_same_model(a: Path, b: Path) -> None:
    wa, wb = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=1e-6, msg=k)


def test_batched_meta_train_equals_the_loop(base, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("meta.batched unset on CPU must run the loop")

    for name, extra in (("loop", []), ("batched", ["meta.batched=true"])):
        with monkeypatch.context() as m:
            if name == "loop":  # the default on CPU (on CUDA it is the batched pass: tests/test_cuda.py)
                m.setattr("speechmeta.meta_train.batched_meta_gradient", refuse)
            meta_train(load_config(overrides=meta_overrides(*extra)), base / "base" / "average.pt", base / "train",
                       base / "test", tmp_path / name, progress=False)
    assert_same_model(tmp_path / "loop" / "meta.pt", tmp_path / "batched" / "meta.pt")


def test_two_gloo_processes_equal_one(base, tmp_path):
    meta_train(load_config(overrides=meta_overrides()), base / "base" / "average.pt", base / "train", base / "test",
               tmp_path / "one", progress=False)
    out = torchrun_meta_train(base, tmp_path / "two", 2, meta_overrides())
    assert out.returncode == 0, out.stderr[-3000:]
    assert_same_model(tmp_path / "one" / "meta.pt", tmp_path / "two" / "meta.pt")


def test_torchrun_backend_follows_the_meta_training_device(monkeypatch):
    """gloo for CPU meta-training even where a GPU is present (NCCL cannot reduce CPU tensors); NCCL on GPUs."""
    joined = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.distributed, "init_process_group", joined.append)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda: 1)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 2)
    assert init_distributed(torch.device("cpu")) == (1, 2, torch.device("cpu"))
    assert init_distributed(torch.device("cuda")) == (1, 2, torch.device("cuda", 1))
    assert joined == ["gloo", "nccl"]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # two processes, one GPU
    with pytest.raises(ValueError, match="process 1 of this node has no GPU of its own"):
        init_distributed(torch.device("cuda"))
    assert joined == ["gloo", "nccl"]


@pytest.mark.parametrize("metric", ["loss", "cer"])
def test_keep_best_is_the_lowest_validation_query_score_and_survives_a_resume(base, tmp_path, caplog, metric):
    def run(steps: int, out: Path, resume: bool = False, *extra: str) -> None:
        cfg = load_config(overrides=[*meta_overrides("meta.keep=best", f"meta.meta_steps={steps}", "meta.eval_every=1",
                                                     "meta.checkpoint_every=1", "meta.outer_lr=0.05",
                                                     f"meta.keep_metric={metric}", *extra)])
        meta_train(cfg, base / "base" / "average.pt", base / "train", base / "test", out, resume=resume,
                   progress=False)

    run(4, tmp_path / "a")
    rows = list(csv.DictReader(open(tmp_path / "a" / "metrics.csv")))
    scores = [float(r[f"query_{metric}_after"]) for r in rows]
    assert [int(r["step"]) for r in rows] == [0, 1, 2, 3, 4] and len(set(scores)) > 1
    kept = load_checkpoint(tmp_path / "a" / "meta.pt")
    assert kept["step"] == scores.index(min(scores))
    assert_same_model(tmp_path / "a" / "meta.pt", tmp_path / "a" / "best.pt")
    # stopped after 2 steps, then resumed to 4: the same choice as the uninterrupted run
    run(2, tmp_path / "b")
    run(4, tmp_path / "b", resume=True)
    assert load_checkpoint(tmp_path / "b" / "meta.pt")["step"] == kept["step"]
    assert_same_model(tmp_path / "a" / "meta.pt", tmp_path / "b" / "meta.pt")
    warned = "no meta-step lowered" in caplog.text
    assert warned == (kept["step"] == 0)
    caplog.clear()
    # a step of 1.0 on every weight wrecks the initialization: step 0 is kept, and the log says so
    run(1, tmp_path / "d", False, "meta.param_set=all", "meta.outer_lr=1.0")
    assert load_checkpoint(tmp_path / "d" / "meta.pt")["step"] == 0
    assert f"no meta-step lowered the validation speakers' query {metric}" in caplog.text
    with pytest.raises(ValueError, match="meta.keep must be best or last"):
        meta_train(load_config(overrides=meta_overrides("meta.keep=first")), base / "base" / "average.pt",
                   base / "train", base / "test", tmp_path / "c", progress=False)
    with pytest.raises(ValueError, match="meta.keep_metric must be one of loss, cer"):
        meta_train(load_config(overrides=meta_overrides("meta.keep_metric=wer")), base / "base" / "average.pt",
                   base / "train", base / "test", tmp_path / "c", progress=False)


def test_query_cer_is_the_greedy_cer_of_the_query_utterances(base, tmp_path):
    from speechmeta.data.dataset import UttData
    from speechmeta.data.tasks import SpeakerTasks
    from speechmeta.meta_train import _spk2utt
    from speechmeta.train import evaluate, load_model

    cfg = load_config(overrides=meta_overrides("meta.meta_steps=0", "meta.eval_tasks=1"))
    result = meta_train(cfg, base / "base" / "average.pt", base / "train", base / "test", tmp_path, progress=False)
    model, tokenizer, base_cfg, _ = load_model(base / "base" / "average.pt")
    data = UttData(base / "test", tokenizer, base_cfg.cmvn)
    task = SpeakerTasks(_spk2utt(data), cfg.meta.shots, cfg.meta.query, 1, cfg.meta.seed + 1).meta_batch(0)[0]
    expected = evaluate(model, data, task.query, 20000, torch.device("cpu"))
    assert result["query_cer_before"] == pytest.approx(expected["cer"])


def test_specaug_masks_support_and_query_utterances(base, tmp_path, monkeypatch):
    import speechmeta.meta_train as mt

    seen: dict[str, list] = {}
    real = mt.task_gradient_sum

    def spy(mc, loss, fast, lrs, supports, queries):
        seen.setdefault("aug" if mc.specaug else "plain", []).extend(b["feats"] for b in supports + queries)
        return real(mc, loss, fast, lrs, supports, queries)

    monkeypatch.setattr(mt, "task_gradient_sum", spy)
    for extra in ([], ["meta.specaug=true"]):
        meta_train(load_config(overrides=meta_overrides(*extra)), base / "base" / "average.pt", base / "train",
                   base / "test", tmp_path / ("aug" if extra else "plain"), progress=False)
    plain, aug = seen["plain"], seen["aug"]
    assert len(plain) == len(aug) == 8  # 2 meta-steps x 2 speakers x (support + query): the same utterances
    for p, a in zip(plain, aug, strict=True):
        assert torch.equal(a, torch.where(a == 0, a, p))  # masking only: every value kept is the original one
    assert sum(int((a == 0).sum()) for a in aug) > sum(int((p == 0).sum()) for p in plain)


def test_task_warp_gives_each_task_one_voice_for_its_support_and_query(base, tmp_path, monkeypatch):
    import speechmeta.meta_train as mt

    seen: dict[str, list] = {}
    real_sum, real_warps = mt.task_gradient_sum, mt._task_warps

    def spy(mc, loss, fast, lrs, supports, queries):
        seen.setdefault("warp" if mc.task_warp else "plain", []).append((supports, queries))
        return real_sum(mc, loss, fast, lrs, supports, queries)

    def warps(tasks, max_warp):
        drawn = real_warps(tasks, max_warp)
        seen.setdefault("factors", []).append(drawn)
        return drawn

    monkeypatch.setattr(mt, "task_gradient_sum", spy)
    monkeypatch.setattr(mt, "_task_warps", warps)
    for extra in ([], ["meta.task_warp=0.2"]):
        meta_train(load_config(overrides=meta_overrides(*extra)), base / "base" / "average.pt", base / "train",
                   base / "test", tmp_path / ("warp" if extra else "plain"), progress=False)
    assert all(f == 1.0 for step in seen["factors"][:2] for f in step)  # the plain run's 2 steps: no warp
    factors = seen["factors"][2:]  # the warped run's: one factor per task (speaker) and step
    drawn = [f for step in factors for f in step]
    assert len(drawn) == len(set(drawn)) == 4 and all(0.8 <= f <= 1.2 for f in drawn)
    for (ps, pq), (ws, wq), step in zip(seen["plain"], seen["warp"], factors, strict=True):
        for p, w, f in zip(ps + pq, ws + wq, step + step, strict=True):  # a task's support and query alike
            torch.testing.assert_close(w["feats"], freq_warp(p["feats"], 0.0, f))


def test_sgd_outer_step_is_linear_in_the_rate_and_sized_by_the_gradient(base, tmp_path):
    def change(name: str, *extra: str) -> dict:
        meta_train(load_config(overrides=meta_overrides("meta.meta_steps=1", *extra)), base / "base" / "average.pt",
                   base / "train", base / "test", tmp_path / name, progress=False)
        after = load_checkpoint(tmp_path / name / "meta.pt")["model"]
        return {k: v for k, v in after.items() if "lhuc" in k}  # LHUC scalers start at zero: the step itself

    one, two = change("sgd1", "meta.outer_optimizer=sgd", "meta.outer_lr=1e-3"), \
        change("sgd2", "meta.outer_optimizer=sgd", "meta.outer_lr=2e-3")
    adam = change("adam", "meta.outer_lr=1e-3")
    for k in one:
        torch.testing.assert_close(two[k], 2 * one[k], rtol=1e-4, atol=1e-9, msg=k)  # linear in the rate
    steps = torch.cat([v.flatten() for v in one.values()]).abs()
    assert steps.max() > 2 * steps[steps > 0].min()  # sizes follow the gradient ...
    moved = torch.cat([v.flatten() for v in adam.values()]).abs()
    assert ((moved - 1e-3).abs() < 1e-6).float().mean() > 0.9  # ... where Adam's first step is the rate for nearly all
    with pytest.raises(ValueError, match="outer_optimizer"):
        change("bad", "meta.outer_optimizer=rmsprop")


@pytest.mark.parametrize("dropout", [True, False])
def test_meta_dropout_sets_the_mode_of_every_meta_step(base, tmp_path, monkeypatch, dropout):
    """meta.dropout=false meta-trains with the model's dropout off, as adaptation to a new speaker runs; the
    evaluations between meta-steps (eval mode) leave the mode as it was."""
    import speechmeta.meta_train as mt

    models, modes = [], []
    real_loss, real_sum = mt.ctc_task_loss, mt.task_gradient_sum

    def loss_spy(model, *args, **kwargs):
        models.append(model)
        return real_loss(model, *args, **kwargs)

    def sum_spy(*args, **kwargs):
        modes.append({m.training for m in models[-1].modules()})
        return real_sum(*args, **kwargs)

    monkeypatch.setattr(mt, "ctc_task_loss", loss_spy)
    monkeypatch.setattr(mt, "task_gradient_sum", sum_spy)
    cfg = load_config(overrides=["model.size=tiny", "meta.param_set=lhuc", "meta.meta_steps=2",
                                 "meta.speakers_per_batch=2", "meta.shots=2", "meta.query=2", "meta.inner_steps=1",
                                 "meta.eval_every=1", "meta.eval_tasks=1", "meta.checkpoint_every=0",
                                 "meta.device=cpu", "meta.keep=last", f"meta.dropout={str(dropout).lower()}"])
    meta_train(cfg, base / "base" / "average.pt", base / "train", base / "test", tmp_path, progress=False)
    assert modes == [{dropout}, {dropout}]
