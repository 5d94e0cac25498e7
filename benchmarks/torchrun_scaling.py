#!/usr/bin/env python3
"""Meta-training throughput with torchrun: tasks (speakers) per second of 2 gloo processes vs 1, on CPU.

Prints JSON. The same base model, speakers and meta-batches for each configuration, run one after another:
  one      1 process, 1 thread          (the reference)
  threads  1 process, `--procs` threads  (what a single process makes of the same cores)
  torchrun `--procs` processes x 1 thread, each taking its share of every meta-batch's speakers (gloo)
Time per configuration = the meta-training loop alone: from metrics.csv, the final evaluation's clock minus twice
the first one (the two evaluations are alike), so process start and model loading are not counted. The torchrun
model must equal the one-process model (checked and reported).
  python benchmarks/torchrun_scaling.py --base recipes/synth/exp/base/average.pt \\
      --train-dir recipes/synth/data/train [--steps 10] [--speakers 4] [--procs 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from speechmeta.checkpoint import load_checkpoint


def run(name: str, cmd: list[str], threads: int, exp: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(f"{name} failed:\n{out.stderr[-3000:]}")
    rows = list(csv.DictReader((exp / "metrics.csv").open()))
    first, last = float(rows[0]["seconds"]), float(rows[-1]["seconds"])
    return {"loop_seconds": round(last - 2 * first, 2), "steps": int(rows[-1]["step"])}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", type=Path, required=True, help="base model (speechmeta train's average.pt)")
    p.add_argument("--train-dir", type=Path, required=True, help="training data dir with features")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--speakers", type=int, default=4, help="speakers per meta-batch")
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--algorithm", default="fomaml")
    p.add_argument("--param-set", default="lhuc")
    args = p.parse_args()
    overrides = [f"meta.algorithm={args.algorithm}", f"meta.param_set={args.param_set}", "meta.device=cpu",
                 f"meta.meta_steps={args.steps}", f"meta.speakers_per_batch={args.speakers}", "meta.shots=5",
                 "meta.query=5", "meta.inner_steps=3", "meta.inner_lr=10", f"meta.eval_every={args.steps + 1}",
                 "meta.eval_tasks=2", "meta.checkpoint_every=0"]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        def meta_train(exp: Path) -> list[str]:
            return ["-m", "speechmeta.cli", "meta-train", "--base", str(args.base), "--train-dir",
                    str(args.train_dir), "--valid-dir", str(args.train_dir), "--exp-dir", str(exp), "--no-progress",
                    *overrides]

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        configs = {
            "one": ([sys.executable, *meta_train(Path(tmp) / "one")], 1),
            "threads": ([sys.executable, *meta_train(Path(tmp) / "threads")], args.procs),
            "torchrun": ([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(args.procs),
                          "--master-addr", "127.0.0.1", "--master-port", str(port),
                          *meta_train(Path(tmp) / "torchrun")], 1),
        }
        for name, (cmd, threads) in configs.items():
            results[name] = run(name, cmd, threads, Path(tmp) / name)
            results[name]["tasks_per_second"] = round(args.steps * args.speakers / results[name]["loop_seconds"], 3)
        one = load_checkpoint(Path(tmp) / "one" / "meta.pt")["model"]
        two = load_checkpoint(Path(tmp) / "torchrun" / "meta.pt")["model"]
        max_diff = max(float((one[k].float() - two[k].float()).abs().max()) for k in one)
    out = {"algorithm": args.algorithm, "param_set": args.param_set, "meta_steps": args.steps,
           "speakers_per_batch": args.speakers, "procs": args.procs, "results": results,
           "torchrun_vs_one": round(results["torchrun"]["tasks_per_second"] / results["one"]["tasks_per_second"], 3),
           "torchrun_vs_threads": round(results["torchrun"]["tasks_per_second"]
                                        / results["threads"]["tasks_per_second"], 3),
           "torchrun_model_max_abs_diff_vs_one": max_diff, "cpus": os.cpu_count(),
           "machine": f"{platform.machine()}, torch {torch.__version__}"}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
