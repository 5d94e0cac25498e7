#!/usr/bin/env python3
"""Peak memory of one second-order MAML meta-gradient vs the number of inner steps. Prints JSON.

Second-order MAML keeps every inner step's graph alive for the outer derivative, so its memory grows linearly with
the inner steps; the fitted slope (MiB per inner step) and intercept are reported, and FOMAML's peak for comparison.
Both are measured on the path meta-training's speaker loop runs (plain autograd, `autograd_gradient`), and MAML also
on torch.func's nested transforms (`meta_gradient`, what the vmap pass runs) for comparison.
On CUDA the peak is torch.cuda.max_memory_allocated; on CPU each point runs in a fresh process and the peak is its
maximum resident set size above the same process's size before the meta-gradient.
    python benchmarks/maml_memory.py [--device cpu|cuda] [--size small] [--steps 1 2 3 4 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

import torch
from common import random_batch

from speechmeta.meta.algorithms import autograd_gradient, meta_gradient
from speechmeta.meta.inner import ctc_task_loss
from speechmeta.model.adapt_params import adapted_names, attach_speaker_params, split_params
from speechmeta.model.conformer import ConformerCTC, ModelConfig


def peak_mib(algorithm: str, steps: int, args, device: torch.device, path: str = "autograd") -> float:
    """Peak memory (MiB) of one meta-gradient above what the model and data already hold."""
    meta_grad = autograd_gradient if path == "autograd" else meta_gradient
    torch.manual_seed(0)
    model = attach_speaker_params(ConformerCTC(ModelConfig(size=args.size, dropout=0.0), 30), "lhuc").to(device)
    fast, frozen = split_params(model, adapted_names(model, "lhuc"))
    lrs = {k: torch.tensor(1.0, device=device) for k in fast}
    loss = ctc_task_loss(model, frozen, twice_differentiable=True)
    support, query = random_batch(args.shots, args.frames, 0, device), random_batch(args.shots, args.frames, 1, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        meta_grad(algorithm, loss, fast, lrs, support, query, steps, True)
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    meta_grad(algorithm, loss, fast, lrs, support, query, steps, True)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024  # ru_maxrss is in KiB on Linux


def measure(algorithm: str, steps: int, args, path: str = "autograd") -> float:
    if args.device == "cuda":
        return peak_mib(algorithm, steps, args, torch.device("cuda"), path)
    cmd = [sys.executable, __file__, "--child", algorithm, str(steps), path, "--size", args.size, "--shots",
           str(args.shots), "--frames", str(args.frames), "--device", "cpu"]
    return float(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip())


def line_fit(steps: list[int], peaks: dict[int, float]) -> tuple[float, float]:
    """Least-squares slope and intercept of peak memory against inner steps."""
    xs = torch.tensor(steps, dtype=torch.float64)
    ys = torch.tensor([peaks[s] for s in steps], dtype=torch.float64)
    slope = float(((xs - xs.mean()) * (ys - ys.mean())).sum() / ((xs - xs.mean()) ** 2).sum())
    return slope, float(ys.mean() - slope * xs.mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--size", default="small")
    p.add_argument("--shots", type=int, default=5)
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--steps", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(peak_mib(args.child[0], int(args.child[1]), args, torch.device("cpu"), args.child[2]))
        return
    maml = {s: measure("maml", s, args) for s in args.steps}
    maml_func = {s: measure("maml", s, args, "func") for s in args.steps}
    fomaml = {s: measure("fomaml", s, args) for s in args.steps}
    slope, intercept = line_fit(args.steps, maml)
    slope_func, intercept_func = line_fit(args.steps, maml_func)
    print(json.dumps({
        "benchmark": "maml_memory", "model": args.size, "param_set": "lhuc", "shots": args.shots,
        "query": args.shots, "frames_per_utt": args.frames, "device":
            torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "peak_mib": {"maml": {s: round(v, 1) for s, v in maml.items()},
                     "maml_torch_func": {s: round(v, 1) for s, v in maml_func.items()},
                     "fomaml": {s: round(v, 1) for s, v in fomaml.items()}},
        "maml_mib_per_inner_step": round(slope, 1), "maml_intercept_mib": round(intercept, 1),
        "maml_torch_func_mib_per_inner_step": round(slope_func, 1),
        "maml_torch_func_intercept_mib": round(intercept_func, 1),
    }, indent=1))


if __name__ == "__main__":
    main()
