#!/usr/bin/env python3
"""Base training speed against the subsampling's width: seconds per optimizer step (forward, F.ctc_loss, backward,
AdamW) of a model size with `model.subsampling_channels` C, against C = d_model (the default) in the same run;
`--d-models` times other encoder widths too (`model.d_model`; the first width and channels are the reference).
On CUDA the model runs under bf16 autocast, as `speechmeta train` does there; --compile adds, for each width, the
same model compiled by `torch.compile` (one fixed batch shape: no recompilation is timed; its first step, the
compilation, is reported apart); --cpu-bf16 adds, for each width on CPU, the same step under CPU bf16 autocast
(fast where the CPU multiplies bf16 matrices natively, AMX or AVX512-BF16; `speechmeta train` runs it with
`train.precision=bf16`, fp32 on CPU otherwise).

Prints JSON. The widths are interleaved over `--repeats` rounds (the median is reported) so that load on a shared
machine hits them alike. A batch of `--utts` x `--frames` random frames stands in for the recipes' length-bucketed
batches (the cost depends only on shapes; 8 x 310 frames is the demo's 2500-frame batch).
  python benchmarks/train_step.py [--size small] [--d-models 0 256] [--channels 0 64 32] [--threads 2]
      [--repeats 5] [--device cuda] [--compile] [--cpu-bf16]
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
from speechmeta.train import autocast


def step_seconds(model, opt: torch.optim.Optimizer, batch: dict, steps: int, device: torch.device,
                 cpu_bf16: bool = False) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        with torch.autocast("cpu", dtype=torch.bfloat16) if cpu_bf16 else autocast(device):
            log_probs, out_lens = model(batch["feats"], batch["feat_lens"])
        loss = F.ctc_loss(log_probs.float().transpose(0, 1), batch["targets"], out_lens, batch["target_lens"],
                          zero_infinity=True)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="small")
    p.add_argument("--channels", type=int, nargs="+", default=[0, 64, 32], help="0: d_model (the default)")
    p.add_argument("--d-models", type=int, nargs="+", default=[0], help="encoder widths (0: the size's)")
    p.add_argument("--utts", type=int, default=8)
    p.add_argument("--frames", type=int, default=310)
    p.add_argument("--steps", type=int, default=5, help="optimizer steps timed per round")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--compile", action="store_true", help="also each width compiled (torch.compile)")
    p.add_argument("--cpu-bf16", action="store_true", help="also each width under CPU bf16 autocast")
    args = p.parse_args()
    device = torch.device(args.device)
    if args.cpu_bf16 and device.type != "cpu":
        p.error("--cpu-bf16 is for --device cpu (CUDA runs bf16 autocast already)")
    torch.set_num_threads(args.threads)
    batch = random_batch(args.utts, args.frames, seed=0, device=device)
    runs = {}
    variants = [(False, False)] + ([(True, False)] if args.compile else []) + ([(False, True)] if args.cpu_bf16 else [])
    for d, c in [(d, c) for d in args.d_models for c in args.channels]:
        for compiled, bf16 in variants:
            torch.manual_seed(0)
            model = ConformerCTC(ModelConfig(size=args.size, d_model=d, dropout=0.1, subsampling_channels=c),
                                 vocab_size=30)
            model = model.to(device).train()
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)  # as `speechmeta train`
            run = {"params": num_params(model), "times": []}
            start = time.perf_counter()
            run["forward"] = torch.compile(model) if compiled else model
            run["bf16"] = bf16
            # the first step: the compilation, or the allocator's first step
            step_seconds(run["forward"], opt, batch, 1, device, bf16)
            if compiled:
                run["first_step_seconds"] = round(time.perf_counter() - start, 2)
            step_seconds(run["forward"], opt, batch, 1, device, bf16)  # warm-up: allocator, oneDNN primitives
            run["opt"] = opt
            runs[(d, c, compiled, bf16)] = run
    for _ in range(args.repeats):
        for run in runs.values():
            run["times"].append(step_seconds(run["forward"], run["opt"], batch, args.steps, device, run["bf16"]))
    reference = statistics.median(next(iter(runs.values()))["times"])
    width = {d: ModelConfig(size=args.size, d_model=d).resolved()["d_model"] for d in args.d_models}
    results = [{"d_model": width[d], "subsampling_channels": c or width[d], "compiled": compiled,
                "params": run["params"],
                "precision": "bf16 autocast" if bf16 or device.type == "cuda" else "fp32",
                "seconds_per_step": round(statistics.median(run["times"]), 4),
                "speedup_vs_first": round(reference / statistics.median(run["times"]), 3),
                **({"first_step_seconds": run["first_step_seconds"]} if compiled else {}),
                **({"speedup_vs_fp32": round(statistics.median(runs[(d, c, False, False)]["times"])
                                             / statistics.median(run["times"]), 3)} if bf16 else {})}
               for (d, c, compiled, bf16), run in runs.items()]
    machine = (torch.cuda.get_device_name(device) if device.type == "cuda"
               else f"{platform.machine()}, {torch.backends.cpu.get_cpu_capability()}")
    print(json.dumps({"size": args.size, "batch": f"{args.utts} x {args.frames} frames", "threads": args.threads,
                      "device": args.device,
                      "repeats": args.repeats, "steps_per_repeat": args.steps, "results": results,
                      "machine": machine, "torch": torch.__version__}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
