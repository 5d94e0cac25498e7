#!/usr/bin/env python3
"""Adapting to speakers: one speaker's latency, and S speakers at once (vmap) vs one after another. Prints JSON.

1. latency: one speaker, K support utterances, the default inner steps, LHUC of the chosen model size: speechmeta's
   functional inner loop (`speechmeta.meta.inner.adapt`, F.ctc_loss; and `adapt_test_time`, the same steps with
   plain autograd, which test-time adaptation can use) vs the plain PyTorch loop a user would write
   (module form, `torch.optim.SGD`, `loss.backward()`), same parameters, steps and rate; both results are compared.
   Also `adapt_test_time` with the subsampling run at every step (a loss without `.prepare`): what reusing it saves.
2. batched: S speakers adapted in one pass (`batched_adapt` with the vmappable fused CTC, what speechmeta uses) vs
   the same speakers one after another (functional loop, F.ctc_loss; and `adapt_test_time`, the loop `speechmeta
   adapt-eval` runs on CPU), for each S of --speakers; the loops are timed up
   to --loop-max speakers. --ops-max: up to this S the batched pass is also timed with the tensor-op CTC (the path
   before the vmappable CTC: the before/after ratio). The FLOPs of one speaker's adaptation are counted
   (torch.utils.flop_counter: matrix products and convolutions, forward and backward, all inner steps) to give the
   achieved rate and, on a GPU of known bf16 peak, the fraction of that limit. On CPU the reference is the rate of
   one large fp32 matrix product measured in the same run on the same threads (`matmul_tflops`): batching cannot
   make the adaptation's products faster than that, so `matmul_tflops` over the loop's rate bounds the speedup any
   batching can give (`batching_ceiling`); the loop's and the batched pass's fractions of it are reported.
Random features stand in for speech (the cost depends only on shapes). On CUDA the model runs under bf16 autocast.
    python benchmarks/adapt.py [--device cpu|cuda] [--size small] [--shots 5] [--frames 300] \
        [--inner-steps 3] [--batched-steps 20] [--speakers 1 4 16 64]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from speechmeta.config import MetaConfig
from speechmeta.meta.batched import batched_adapt
from speechmeta.meta.inner import adapt, adapt_test_time, ctc_task_loss
from speechmeta.model.adapt_params import adapted_names, attach_speaker_params, split_params
from speechmeta.model.conformer import ConformerCTC, ModelConfig
from speechmeta.model.ctc import ctc_loss

BF16_PEAK_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0}  # dense, from the vendors' data sheets


def support_batch(utts: int, frames: int, vocab: int, seed: int, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(seed)
    labels = frames // 4 // 3  # ~3 encoder frames per character, as in real read speech
    batch = {"feats": torch.randn(utts, frames, 80, generator=g), "feat_lens": torch.full((utts,), frames),
             "targets": torch.randint(3, vocab, (utts, labels), generator=g),
             "target_lens": torch.full((utts,), labels)}
    return {k: v.to(device) for k, v in batch.items()}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, repeats: int, device: torch.device, warmup: bool = True) -> float:
    if warmup:
        fn()
        sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_tflops(device: torch.device, n: int = 2048, repeats: int = 5) -> float:
    """The rate of one n x n fp32 matrix product on this device and thread count: the CPU's practical peak."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    return 2 * n ** 3 / timed(lambda: a @ b, repeats, device) / 1e12


def plain_pytorch_adapt(model: torch.nn.Module, names: list[str], support: dict, lr: float, steps: int,
                        bf16: bool) -> dict:
    """The reference: module form, requires_grad on the adapted tensors only, torch.optim.SGD."""
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    params = [p for n, p in model.named_parameters() if n in names]
    for n, p in model.named_parameters():
        p.requires_grad_(n in names)
    optimizer = torch.optim.SGD(params, lr=lr)
    for _ in range(steps):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            log_probs, lens = model(support["feats"], support["feat_lens"])
        loss = ctc_loss(log_probs.float(), support["targets"], lens, support["target_lens"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    adapted = {n: p.detach().clone() for n, p in model.named_parameters() if n in names}
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(start[n])
    return adapted


def speaker_args(p: argparse.ArgumentParser) -> None:
    """The options of one speaker's adaptation task, shared with compile_adapt.py."""
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--size", default="small")
    p.add_argument("--param-set", default="lhuc")
    p.add_argument("--shots", type=int, default=5)
    p.add_argument("--frames", type=int, default=300)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    speaker_args(p)
    p.add_argument("--inner-steps", type=int, default=MetaConfig().inner_steps, help="steps for the latency figure")
    p.add_argument("--inner-lr", type=float, default=20.0, help="LHUC needs a large rate (measured on real tasks)")
    p.add_argument("--batched-steps", type=int, default=20, help="steps for the batched-speakers figure")
    p.add_argument("--speakers", type=int, nargs="+", default=[1, 4, 16, 64])
    p.add_argument("--loop-max", type=int, default=64, help="time the one-after-another loop up to this many")
    p.add_argument("--ops-max", type=int, default=0, help="time the tensor-op CTC batched pass up to this many")
    p.add_argument("--chunk", type=int, default=0, help="speakers per vmap chunk (0: all; halved on out-of-memory)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-latency", action="store_true")
    args = p.parse_args()
    device = torch.device(args.device)
    bf16 = device.type == "cuda"
    torch.manual_seed(0)
    vocab = 30
    model = attach_speaker_params(ConformerCTC(ModelConfig(size=args.size), vocab), args.param_set)
    model = model.to(device).eval()
    names = adapted_names(model, args.param_set)
    fast, frozen = split_params(model, names)
    lrs = {k: torch.tensor(args.inner_lr, device=device) for k in fast}
    fused = ctc_task_loss(model, frozen, twice_differentiable=False, bf16=bf16)
    ops = ctc_task_loss(model, frozen, twice_differentiable=True, bf16=bf16)
    vmappable = ctc_task_loss(model, frozen, vmappable=True, bf16=bf16)
    out = {"benchmark": "adapt", "model": args.size, "params": sum(v.numel() for v in model.parameters()),
           "param_set": args.param_set, "adapted_values": sum(v.numel() for v in fast.values()), "shots": args.shots,
           "frames_per_utt": args.frames, "precision": "bf16 autocast" if bf16 else "fp32",
           "statistic": f"median of {args.repeats}"}

    if not args.skip_latency:
        support = support_batch(args.shots, args.frames, vocab, 0, device)
        ours = timed(lambda: adapt(fused, fast, support, lrs, args.inner_steps, True), args.repeats, device)
        autograd = timed(lambda: adapt_test_time(fused, fast, support, lrs, args.inner_steps), args.repeats, device)
        every_step = timed(lambda: adapt_test_time(lambda f, b: fused(f, b), fast, support, lrs, args.inner_steps),
                           args.repeats, device)  # a loss without .prepare: the subsampling runs every step
        plain = timed(lambda: plain_pytorch_adapt(model, names, support, args.inner_lr, args.inner_steps, bf16),
                      args.repeats, device)
        a = adapt(fused, fast, support, lrs, args.inner_steps, True)
        b = plain_pytorch_adapt(model, names, support, args.inner_lr, args.inner_steps, bf16)
        out["latency"] = {"inner_steps": args.inner_steps, "speechmeta_seconds": round(ours, 4),
                          "speechmeta_autograd_seconds": round(autograd, 4),
                          "plain_pytorch_sgd_seconds": round(plain, 4), "plain_over_speechmeta": round(plain / ours, 3),
                          "plain_over_speechmeta_autograd": round(plain / autograd, 3),
                          "speechmeta_autograd_subsampling_every_step_seconds": round(every_step, 4),
                          "subsampling_once_speedup": round(every_step / autograd, 3),
                          "max_abs_difference": float(max((a[k] - b[k]).abs().max() for k in a))}

    with FlopCounterMode(display=False) as counter:
        adapt(fused, fast, support_batch(args.shots, args.frames, vocab, 0, device), lrs, args.batched_steps, True)
    flops = counter.get_total_flops()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    peak = next((v for k, v in BF16_PEAK_TFLOPS.items() if k in name), None) if bf16 else None
    reference = matmul_tflops(device) if device.type == "cpu" else None
    rows, loop_per_speaker = [], None
    for s in args.speakers:
        supports = [support_batch(args.shots, args.frames, vocab, 1000 + i, device) for i in range(s)]
        row = {"speakers": s}
        if s <= args.loop_max:
            def loop(supports=supports):
                for one in supports:
                    adapt(fused, fast, one, lrs, args.batched_steps, True)
            def loop_autograd(supports=supports):
                for one in supports:
                    adapt_test_time(fused, fast, one, lrs, args.batched_steps)
            row["loop_seconds"] = round(timed(loop, 1, device, warmup=s == args.speakers[0]), 4)
            row["loop_autograd_seconds"] = round(timed(loop_autograd, 1, device, warmup=s == args.speakers[0]), 4)
            loop_per_speaker = row["loop_seconds"] / s
            if reference:
                row["loop_fraction_of_matmul"] = round(flops * s / row["loop_autograd_seconds"] / 1e12 / reference, 3)
                row["batching_ceiling"] = round(1 / row["loop_fraction_of_matmul"], 2)
        chunk = args.chunk or s
        while True:
            try:
                seconds = timed(lambda c=chunk, sp=supports: batched_adapt(vmappable, fast, lrs, sp, args.batched_steps,
                                                                           c), 1, device)
                break
            except torch.cuda.OutOfMemoryError:
                if chunk == 1:
                    raise
                chunk //= 2
                torch.cuda.empty_cache()
        tflops = flops * s / seconds / 1e12
        row.update({"batched_seconds": round(seconds, 4), "chunk": chunk,
                    "speakers_per_second": round(s / seconds, 2), "achieved_tflops": round(tflops, 3)})
        if s <= args.ops_max:
            row["batched_ops_ctc_seconds"] = round(
                timed(lambda c=chunk, sp=supports: batched_adapt(ops, fast, lrs, sp, args.batched_steps, c), 1, device),
                4)
            row["vmappable_over_ops_ctc"] = round(row["batched_ops_ctc_seconds"] / seconds, 3)
        if "loop_seconds" in row:
            row["batched_speedup"] = round(row["loop_seconds"] / seconds, 3)
            row["batched_speedup_vs_autograd_loop"] = round(row["loop_autograd_seconds"] / seconds, 3)
        elif loop_per_speaker:
            row["speedup_vs_measured_loop_rate"] = round(loop_per_speaker * s / seconds, 3)
        if reference:
            row["batched_fraction_of_matmul"] = round(tflops / reference, 3)
        if peak:
            row["fraction_of_bf16_peak"] = round(tflops / peak, 4)
        if device.type == "cuda":
            row["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
            torch.cuda.reset_peak_memory_stats(device)
        rows.append(row)
        print(json.dumps(row), flush=True)
    out["batched"] = {"inner_steps": args.batched_steps, "flops_per_speaker": flops,
                      "bf16_peak_tflops": peak, "matmul_tflops": reference and round(reference, 4), "rows": rows}
    out["machine"] = {"device": name, "cores": os.cpu_count(), "threads": torch.get_num_threads(),
                      "torch": torch.__version__}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
