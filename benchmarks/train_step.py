#!/usr/bin/env python3
"""Base training speed against the subsampling's width: seconds per optimizer step (forward, F.ctc_loss, backward,
AdamW) of a model size with `model.subsampling_channels` C, against C = d_model (the default) in the same run.

Prints JSON. The widths are interleaved over `--repeats` rounds (the median is reported) so that load on a shared
machine hits them alike. A batch of `--utts` x `--frames` random frames stands in for the recipes' length-bucketed
batches (the cost depends only on shapes; 8 x 310 frames is the demo's 2500-frame batch).
  python benchmarks/train_step.py [--size small] [--channels 0 64 32] [--threads 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from common import random_batch

from speechmeta.model.conformer import ConformerCTC, ModelConfig, num_params


def step_seconds(model: ConformerCTC, opt: torch.optim.Optimizer, batch: dict, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        log_probs, out_lens = model(batch["feats"], batch["feat_lens"])
        loss = F.ctc_loss(log_probs.transpose(0, 1), batch["targets"], out_lens, batch["target_lens"],
                          zero_infinity=True)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - start) / steps


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="small")
    p.add_argument("--channels", type=int, nargs="+", default=[0, 64, 32], help="0: d_model (the default)")
    p.add_argument("--utts", type=int, default=8)
    p.add_argument("--frames", type=int, default=310)
    p.add_argument("--steps", type=int, default=5, help="optimizer steps timed per round")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    batch = random_batch(args.utts, args.frames, seed=0, device=torch.device("cpu"))
    runs = {}
    for c in args.channels:
        torch.manual_seed(0)
        model = ConformerCTC(ModelConfig(size=args.size, dropout=0.1, subsampling_channels=c), vocab_size=30).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        step_seconds(model, opt, batch, 2)  # warm-up: allocator, oneDNN primitives
        runs[c] = {"model": model, "opt": opt, "times": []}
    for _ in range(args.repeats):
        for run in runs.values():
            run["times"].append(step_seconds(run["model"], run["opt"], batch, args.steps))
    d_model = ModelConfig(size=args.size).resolved()["d_model"]
    reference = statistics.median(runs[args.channels[0]]["times"])
    results = [{"subsampling_channels": c or d_model, "params": num_params(run["model"]),
                "seconds_per_step": round(statistics.median(run["times"]), 4),
                "speedup_vs_first": round(reference / statistics.median(run["times"]), 3)}
               for c, run in runs.items()]
    print(json.dumps({"size": args.size, "batch": f"{args.utts} x {args.frames} frames", "threads": args.threads,
                      "repeats": args.repeats, "steps_per_repeat": args.steps, "results": results,
                      "machine": platform.machine(), "torch": torch.__version__}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
