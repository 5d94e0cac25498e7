"""Iterative learning (`speechmeta meta-train`): meta-train a base model so that it adapts well to a new speaker.

Each meta-step draws B training speakers (tasks), adapts the chosen parameter set on each speaker's K support
utterances, scores the adapted model on Q query utterances, and updates the initialization of the adapted
parameters (and, for Meta-SGD, the inner learning rates: one per tensor, or per weight with `meta.rates=element`)
with Adam (or plain SGD: `meta.outer_optimizer`) on the task-averaged meta-gradient.
Every `eval_every` steps the mean query loss and the greedy query CER, before and after adaptation on fixed
validation tasks, go to metrics.csv: the meta-training curve. `meta.keep=best` makes meta.pt the model of the
evaluation with the lowest query loss after adaptation, or CER with `meta.keep_metric=cer` (kept in best.pt as
training goes: early stopping on the validation speakers, since the initialization can overfit the few training
speakers); `last` the final one. The meta checkpoint holds the
model with the meta-learned initialization and the adaptation rule (algorithm, parameter set, inner steps, inner
rates), so `adapt` can apply it.

`meta.batched=true` computes all speakers of a meta-batch in one vmap pass (the default on CUDA). Under
`torchrun --nproc-per-node N -m speechmeta.cli meta-train ...` each process takes a share of the meta-batch's
speakers and the summed meta-gradients are all-reduced (NCCL on GPU, gloo on CPU); only process 0 writes files.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import random
import time
from pathlib import Path

import torch
from torch.func import functional_call
from tqdm import tqdm

from speechmeta.checkpoint import checkpoints, latest, load_checkpoint, save_checkpoint
from speechmeta.config import Config, MetaConfig, save_config, to_dict
from speechmeta.data.augment import freq_warp, spec_augment, warp_factors
from speechmeta.data.dataset import UttData
from speechmeta.data.tasks import SpeakerTasks, Task
from speechmeta.fileio import append_csv_row, keep_csv_rows, remove_stale_temps
from speechmeta.meta.algorithms import ALGORITHMS, autograd_gradient, meta_gradient
from speechmeta.meta.batched import batched_meta_gradient
from speechmeta.meta.inner import adapt, ctc_task_loss
from speechmeta.model.adapt_params import adapted_names, attach_speaker_params, split_params
from speechmeta.model.ctc import ctc_loss, greedy_decode
from speechmeta.scoring import score
from speechmeta.train import leave_out_unusable, load_model, model_data, resolve_device, rng_state, set_rng_state

log = logging.getLogger(__name__)
OUTER_OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}
METRICS = ["step", "query_loss_before", "query_loss_after", "gain", "query_cer_before", "query_cer_after", "seconds"]
KEEP_METRICS = {"loss": "query_loss_after", "cer": "query_cer_after"}  # meta.keep_metric: what best.pt minimizes
RATE_SHAPES = ("tensor", "element")  # meta.rates: Meta-SGD's inner rates, one per adapted tensor or per weight


def init_distributed(device: torch.device) -> tuple[int, int, torch.device]:
    """(rank, world size, this process's device): under torchrun, join the process group, NCCL when meta-training
    runs on GPUs (one per process: LOCAL_RANK's), gloo on CPU even where a GPU is present; else (0, 1, device)."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) == 1:
        return 0, 1, device
    if device.type == "cuda":
        local_rank, gpus = int(os.environ.get("LOCAL_RANK", 0)), torch.cuda.device_count()
        if local_rank >= gpus:
            raise ValueError(f"torchrun process {local_rank} of this node has no GPU of its own ({gpus} visible): "
                             f"start at most {gpus} per node (--nproc-per-node), or meta-train on CPU "
                             "(meta.device=cpu, gloo)")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return torch.distributed.get_rank(), torch.distributed.get_world_size(), device


def query_scores(model, fast: dict, frozen: dict, lrs: dict, tasks: list[Task], data: UttData, mc: MetaConfig,
                 device: torch.device) -> dict:
    """Mean query loss over `tasks` and greedy query CER (pooled), without adaptation and after the inner loop."""
    loss = ctc_task_loss(model, frozen)
    losses: dict[str, list[float]] = {"before": [], "after": []}
    refs: dict[str, str] = {}
    hyps: dict[str, dict[str, str]] = {"before": {}, "after": {}}
    for i, task in enumerate(tasks):
        support, query = (_to(data.batch(u), device) for u in (task.support, task.query))
        for when, params in (("before", fast), ("after", adapt(loss, fast, support, lrs, mc.inner_steps, True))):
            with torch.no_grad():
                log_probs, lens = functional_call(model, {**frozen, **params}, (query["feats"], query["feat_lens"]))
            losses[when].append(ctc_loss(log_probs.float(), query["targets"], lens, query["target_lens"]).item())
            for utt, ids in zip(query["utts"], greedy_decode(log_probs, lens), strict=True):
                key = f"{i}-{utt}"  # tasks may share a speaker's utterances
                refs[key] = data.tokenizer.norm(data.data.text[utt])
                hyps[when][key] = data.tokenizer.decode(ids)
    return {f"query_{what}_{when}": value for when in ("before", "after") for what, value in
            (("loss", sum(losses[when]) / len(losses[when])), ("cer", score(refs, hyps[when])["cer"]))}


def _augment(batch: dict, cfg: Config, warp: float) -> dict:
    """The batch warped by its task's voice factor `warp` (`meta.task_warp`: a training speaker made into one the
    base model has not fitted, the situation at test time), then with SpecAugment masks when `meta.specaug`
    (meta-training then sees the training speakers as base training did)."""
    feats = freq_warp(batch["feats"], 0.0, warp)
    if cfg.meta.specaug:
        feats = spec_augment(feats, batch["feat_lens"], cfg.specaug)
    return {**batch, "feats": feats}


def _task_warps(tasks: int, max_warp: float) -> list[float]:
    """One voice factor per task from [1 - max_warp, 1 + max_warp] (no random draw when max_warp is 0)."""
    if max_warp <= 0:
        return [1.0] * tasks
    return warp_factors(tasks, max_warp).tolist()


def _to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def meta_train(cfg: Config, base: Path, train_dir: Path, valid_dir: Path, exp_dir: Path, resume: bool = False,
               progress: bool = True) -> dict:
    """Meta-train from the base checkpoint into `exp_dir`; returns the last evaluation."""
    mc = cfg.meta
    if mc.algorithm not in ALGORITHMS:
        raise ValueError(f"meta.algorithm must be one of {', '.join(ALGORITHMS)}, not '{mc.algorithm}'")
    if mc.outer_optimizer not in OUTER_OPTIMIZERS:
        raise ValueError(f"meta.outer_optimizer must be one of {', '.join(OUTER_OPTIMIZERS)}, "
                         f"not '{mc.outer_optimizer}'")
    if mc.rates not in RATE_SHAPES:
        raise ValueError(f"meta.rates must be one of {', '.join(RATE_SHAPES)}, not '{mc.rates}'")
    if mc.rates == "element" and mc.algorithm != "metasgd":
        raise ValueError(f"meta.rates=element: only Meta-SGD learns its inner rates; {mc.algorithm} keeps one fixed "
                         "rate, so leave meta.rates at tensor")
    if mc.keep not in ("best", "last"):
        raise ValueError(f"meta.keep must be best or last, not '{mc.keep}'")
    if mc.keep_metric not in KEEP_METRICS:
        raise ValueError(f"meta.keep_metric must be one of {', '.join(KEEP_METRICS)}, not '{mc.keep_metric}'")
    kept_by = KEEP_METRICS[mc.keep_metric]
    rank, world, device = init_distributed(resolve_device(mc.device))
    exp_dir.mkdir(parents=True, exist_ok=True)
    if mc.batched is None:  # much faster on a GPU; on CPU the loop, which keeps less memory (benchmarks/README.md)
        mc = dataclasses.replace(mc, batched=device.type == "cuda")
    torch.manual_seed(mc.seed + rank)  # dropout differs between processes, as between speakers
    random.seed(mc.seed)

    model, tokenizer, base_cfg, state = load_model(base)
    model = attach_speaker_params(model, mc.param_set, mc.adapter_dim).to(device).train(mc.dropout)
    if "meta" in state and state["meta"]["param_set"] == mc.param_set:  # continue from an earlier meta model
        model.load_state_dict(state["model"])
    names = adapted_names(model, mc.param_set)
    train_data = model_data(train_dir, tokenizer, base_cfg, state)
    valid_data = model_data(valid_dir, tokenizer, base_cfg, state)
    leave_out_unusable([train_data, valid_data], cfg.train.max_frames, exp_dir, write=rank == 0)
    tasks = SpeakerTasks(_spk2utt(train_data), mc.shots, mc.query, mc.speakers_per_batch, mc.seed)
    for spk, why in tasks.skipped.items():
        log.warning("speaker %s cannot make a task: %s", spk, why)
    valid_tasks = SpeakerTasks(_spk2utt(valid_data), mc.shots, mc.query, 1, mc.seed + 1)
    eval_set = [valid_tasks.meta_batch(i)[0] for i in range(mc.eval_tasks)]

    init = {n: p for n, p in model.named_parameters() if n in set(names)}  # the meta-learned initialization
    lrs = {n: torch.nn.Parameter(torch.full_like(init[n].detach(), mc.inner_lr) if mc.rates == "element"
                                 else torch.tensor(mc.inner_lr, device=device)) for n in names}
    outer = list(init.values()) + (list(lrs.values()) if mc.algorithm == "metasgd" else [])
    groups = [{"params": outer}]  # one group unless rate_lr is set: checkpoints of earlier runs still resume
    if mc.algorithm == "metasgd" and mc.rate_lr:  # at outer_lr, a rate of 0.03 moves by 1e-4 a step
        groups = [{"params": list(init.values())}, {"params": list(lrs.values()), "lr": mc.rate_lr}]
    optimizer = OUTER_OPTIMIZERS[mc.outer_optimizer](groups, lr=mc.outer_lr)
    step = 0
    last = latest(exp_dir) if resume else None
    if last is not None:
        saved = load_checkpoint(last)
        model.load_state_dict(saved["model"])
        for n, v in saved["meta"]["inner_lrs"].items():
            lrs[n].data.copy_(v)
        optimizer.load_state_dict(saved["optimizer"])
        step = saved["step"]
        set_rng_state(saved["rng"])
        log.info("resumed from %s at meta-step %d", last, step)
    main = rank == 0  # only the first process writes files and evaluates
    if main:
        for stale in remove_stale_temps(exp_dir):
            log.info("removed %s, left by an interrupted write", stale)
        save_config(cfg, exp_dir / "config.yaml")
    log.info("meta-training %s on %s (%d tensors, %d values), %d speakers (%d skipped), %d inner steps",
             mc.algorithm, mc.param_set, len(names), sum(p.numel() for p in init.values()), len(tasks.speakers),
             len(tasks.skipped), mc.inner_steps)

    def save(path: Path) -> None:
        if not main:
            return
        save_checkpoint(path, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "rng": rng_state(),
            "config": to_dict(base_cfg), "meta_config": to_dict(cfg.meta), "tokenizer": tokenizer.to_dict(),
            "aux_tokenizer": state.get("aux_tokenizer"),
            "cmvn_global": state.get("cmvn_global"),
            "meta": {"algorithm": mc.algorithm, "param_set": mc.param_set, "adapter_dim": mc.adapter_dim,
                     "inner_steps": mc.inner_steps, "inner_lrs": {n: v.detach().cpu() for n, v in lrs.items()}},
        })

    def evaluate() -> dict:
        fast, frozen = split_params(model, names)
        scores = query_scores(model.eval(), fast, frozen, {n: v.detach() for n, v in lrs.items()}, eval_set,
                              valid_data, mc, device)
        model.train(mc.dropout)
        return {"step": step, **scores, "gain": scores["query_loss_before"] - scores["query_loss_after"],
                "seconds": round(time.time() - began, 1)}

    began = time.time()
    metrics_path = exp_dir / "metrics.csv"
    # the rows before the checkpoint, under today's header (a metrics.csv of an older version lacks the CER columns)
    rows = keep_csv_rows(metrics_path, lambda row: int(row["step"]) < step, METRICS) if main else []
    best = math.inf  # the lowest `kept_by` so far, whose model best.pt holds
    if main and (exp_dir / "best.pt").exists():
        if load_checkpoint(exp_dir / "best.pt")["step"] < step:  # from the steps this run continues
            best = min((float(r[kept_by]) for r in rows if r[kept_by]), default=math.inf)
        else:
            (exp_dir / "best.pt").unlink()

    def track(result: dict) -> None:
        nonlocal best
        append_csv_row(metrics_path, METRICS, result)
        log.info("meta-step %d: query loss %.4f before, %.4f after adaptation; CER %.4f before, %.4f after",
                 result["step"], result["query_loss_before"], result["query_loss_after"], result["query_cer_before"],
                 result["query_cer_after"])
        if mc.keep == "best" and result[kept_by] < best:
            best = result[kept_by]
            save(exp_dir / "best.pt")

    result: dict = {}
    bar = tqdm(total=mc.meta_steps, initial=step, desc=f"meta-train {mc.algorithm}", disable=not (progress and main))
    while step < mc.meta_steps:
        if main and step % mc.eval_every == 0:
            result = evaluate()
            track(result)
        fast, frozen = split_params(model, names)
        second_order = mc.algorithm == "maml" or (mc.algorithm == "metasgd" and not mc.first_order)
        loss = ctc_task_loss(model, frozen, twice_differentiable=second_order, vmappable=mc.batched)
        alphas = {n: v.detach() for n, v in lrs.items()}
        meta_batch = tasks.meta_batch(step)
        mine = meta_batch[rank::world]  # with torchrun, each process takes its share of the speakers
        supports, queries = [], []
        for t, warp in zip(mine, _task_warps(len(mine), mc.task_warp), strict=True):
            supports.append(_to(_augment(train_data.batch(t.support), cfg, warp), device))
            queries.append(_to(_augment(train_data.batch(t.query), cfg, warp), device))
        g, g_lrs = task_gradient_sum(mc, loss, fast, alphas, supports, queries)
        flat = torch.cat([g[n].flatten() for n in init] + ([g_lrs[n].flatten() for n in lrs] if g_lrs else []))
        if world > 1:
            torch.distributed.all_reduce(flat)
        flat = flat / len(meta_batch)
        offset = 0
        for p in outer:
            p.grad = flat[offset:offset + p.numel()].view_as(p).clone()
            offset += p.numel()
        torch.nn.utils.clip_grad_norm_(outer, mc.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        bar.update(1)
        if mc.checkpoint_every and step % mc.checkpoint_every == 0:
            save(exp_dir / f"step-{step}.pt")
            for old in checkpoints(exp_dir, r"step-(\d+)\.pt")[:-2]:
                old.unlink()
    bar.close()
    if main:
        result = evaluate()
        track(result)
        save(exp_dir / f"step-{step}.pt")
        if mc.keep == "best" and (exp_dir / "best.pt").exists():
            kept = load_checkpoint(exp_dir / "best.pt")
            save_checkpoint(exp_dir / "meta.pt", kept)
            log.info("meta.pt: the model of meta-step %d (validation query %s after adaptation %.4f)",
                     kept["step"], mc.keep_metric, best)
            if kept["step"] == 0:
                log.warning("no meta-step lowered the validation speakers' query %s after adaptation: meta.pt "
                            "holds the initial weights with the adaptation rule (%s, %d inner steps). When the base "
                            "model was trained on the same speakers, their meta-gradient rarely helps new ones",
                            mc.keep_metric, mc.algorithm, mc.inner_steps)
        else:
            save(exp_dir / "meta.pt")
    if world > 1:  # leave together: a process that exits while process 0 still evaluates can abort (gloo)
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return result


def task_gradient_sum(mc: MetaConfig, loss, fast: dict, lrs: dict, supports: list[dict], queries: list[dict]
                      ) -> tuple[dict, dict | None]:
    """Sum over tasks of (initialization gradient, rate gradient or None): all speakers in one vmap pass when
    `mc.batched`, else one speaker after another."""
    if not supports:
        return {n: torch.zeros_like(v) for n, v in fast.items()}, (
            {n: torch.zeros_like(v) for n, v in lrs.items()} if mc.algorithm == "metasgd" else None)
    if mc.batched:
        g, g_lrs = batched_meta_gradient(mc.algorithm, loss, fast, lrs, supports, queries, mc.inner_steps,
                                         mc.first_order)
        n = len(supports)
        return {k: v * n for k, v in g.items()}, ({k: v * n for k, v in g_lrs.items()} if g_lrs else None)
    plain = mc.algorithm != "reptile"  # plain autograd, no torch.func: faster
    grads = [autograd_gradient(mc.algorithm, loss, fast, lrs, s, q, mc.inner_steps, mc.first_order) if plain
             else meta_gradient(mc.algorithm, loss, fast, lrs, s, q, mc.inner_steps, mc.first_order)
             for s, q in zip(supports, queries, strict=True)]
    g = {k: torch.stack([one[0][k] for one in grads]).sum(0) for k in fast}
    g_lrs = {k: torch.stack([one[1][k] for one in grads]).sum(0) for k in lrs} if grads[0][1] is not None else None
    return g, g_lrs


def _spk2utt(data: UttData) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for utt in data.utts:
        out.setdefault(data.data.utt2spk[utt], []).append(utt)
    return out
