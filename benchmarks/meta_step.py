#!/usr/bin/env python3
"""Seconds per meta-step: speakers one after another (loop) vs all at once (vmap), for FOMAML, Meta-SGD and MAML.

Prints JSON. Random features stand in for speech (the cost depends only on shapes): S speakers, K support and Q query
utterances of T frames each, the chosen parameter set (LHUC by default) of the chosen model size adapting. Both
paths use the tensor-op CTC so that only the batching differs; also timed: the loop with F.ctc_loss (what
first-order meta-training used unbatched), the loop by plain autograd (`autograd_gradient`: what meta-training runs
now; F.ctc_loss first order, the tensor-op CTC for MAML) and, first order, the batched pass with the vmappable fused
CTC (what `meta.batched=true` uses).
    python benchmarks/meta_step.py [--device cpu|cuda] [--size small] [--param-set lhuc] [--speakers 4] \
        [--frames 300] [--inner-steps 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch

from speechmeta.meta.algorithms import autograd_gradient, meta_gradient
from speechmeta.meta.batched import batched_meta_gradient
from speechmeta.meta.inner import ctc_task_loss
from speechmeta.model.adapt_params import adapted_names, attach_speaker_params, split_params
from speechmeta.model.conformer import ConformerCTC, ModelConfig


def batch(utts: int, frames: int, labels: int, vocab: int, seed: int, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(seed)
    out = {"feats": torch.randn(utts, frames, 80, generator=g), "feat_lens": torch.full((utts,), frames),
           "targets": torch.randint(3, vocab, (utts, labels), generator=g),
           "target_lens": torch.full((utts,), labels)}
    return {k: v.to(device) for k, v in out.items()}


def timed(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", default="small")
    p.add_argument("--param-set", default="lhuc", help="what adapts: lhuc, all, encoder, ... (see adapt_params)")
    p.add_argument("--speakers", type=int, default=4)
    p.add_argument("--shots", type=int, default=5)
    p.add_argument("--query", type=int, default=5)
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--inner-steps", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--algorithms", nargs="+", default=["fomaml", "metasgd", "maml"])
    args = p.parse_args()
    torch.manual_seed(0)
    vocab = 30
    device = torch.device(args.device)
    model = attach_speaker_params(ConformerCTC(ModelConfig(size=args.size), vocab), args.param_set).to(device).train()
    fast, frozen = split_params(model, adapted_names(model, args.param_set))
    lrs = {k: torch.tensor(0.1, device=device) for k in fast}
    labels = args.frames // 4 // 3
    supports = [batch(args.shots, args.frames, labels, vocab, s, device) for s in range(args.speakers)]
    queries = [batch(args.query, args.frames, labels, vocab, 100 + s, device) for s in range(args.speakers)]
    results = {}
    for algorithm in args.algorithms:
        ops_loss = ctc_task_loss(model, frozen, twice_differentiable=True)
        fused_loss = ctc_task_loss(model, frozen, twice_differentiable=False)
        vmappable_loss = ctc_task_loss(model, frozen, vmappable=True)

        def loop(loss=ops_loss, algorithm=algorithm):
            for s, q in zip(supports, queries, strict=True):
                meta_gradient(algorithm, loss, fast, lrs, s, q, args.inner_steps, True)

        def batched(algorithm=algorithm, loss=ops_loss):
            batched_meta_gradient(algorithm, loss, fast, lrs, supports, queries, args.inner_steps, True)

        row = {"loop_seconds": timed(loop, args.repeats, device),
               "batched_seconds": timed(batched, args.repeats, device)}
        if algorithm != "maml":  # F.ctc_loss has no double backward
            row["loop_fused_ctc_seconds"] = timed(lambda a=algorithm, f=fused_loss: loop(f, a), args.repeats, device)
            row["batched_vmappable_ctc_seconds"] = timed(lambda a=algorithm, v=vmappable_loss: batched(a, v),
                                                         args.repeats, device)
            row["batched_vmappable_speedup"] = row["loop_fused_ctc_seconds"] / row["batched_vmappable_ctc_seconds"]

        def plain(a=algorithm, f=ops_loss if algorithm == "maml" else fused_loss):
            for s, q in zip(supports, queries, strict=True):
                autograd_gradient(a, f, fast, lrs, s, q, args.inner_steps, True)

        row["loop_plain_autograd_seconds"] = timed(plain, args.repeats, device)  # what meta-training's loop runs
        reference = row["loop_seconds"] if algorithm == "maml" else row["loop_fused_ctc_seconds"]
        row["plain_autograd_speedup"] = reference / row["loop_plain_autograd_seconds"]
        row["batched_speedup"] = row["loop_seconds"] / row["batched_seconds"]
        results[algorithm] = {k: round(v, 3) for k, v in row.items()}
    print(json.dumps({
        "benchmark": "meta_step", "model": args.size, "param_set": args.param_set, "speakers": args.speakers,
        "shots": args.shots, "query": args.query, "frames_per_utt": args.frames, "inner_steps": args.inner_steps,
        "statistic": f"median of {args.repeats}", "results": results, "threads": torch.get_num_threads(),
        "machine": {"cpu": platform.machine(), "cores": os.cpu_count(), "torch": torch.__version__,
                    "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"},
    }, indent=1))


if __name__ == "__main__":
    main()
