#!/usr/bin/env python3
"""One speaker's adaptation with the model's forward (and so its backward) compiled by `torch.compile`, against the
same steps eagerly, in one run. Prints JSON.

On a GPU one speaker's adaptation is bound by kernel launches (benchmarks/README.md: ~1300 launches per inner step,
the GPU busy a few % of the time); inductor fuses the elementwise kernels and, in "reduce-overhead" mode, replays
CUDA graphs. The loss is `ctc_task_loss` (F.ctc_loss, which dynamo leaves out of the graph: one graph break) and the
loop `adapt_test_time`, what `speechmeta adapt` runs. Each mode reports its first call (the compilation), its
median steady time, the speedup over eager, the largest difference from eager's adapted tensors, and the cost of a
second input shape (--frames2: a recompilation, since real speakers' support sets differ in length).
Random features stand in for speech. On CUDA the model runs under bf16 autocast, as there.
    python benchmarks/compile_adapt.py [--device cuda] [--steps 3 20] [--modes default reduce-overhead]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch
from adapt import speaker_args, support_batch, sync, timed

from speechmeta.meta.inner import adapt_test_time, ctc_task_loss
from speechmeta.model.adapt_params import adapted_names, attach_speaker_params, split_params
from speechmeta.model.conformer import ConformerCTC, ModelConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    speaker_args(p)
    p.add_argument("--frames2", type=int, default=280, help="a second shape: the recompilation's cost (0: skip)")
    p.add_argument("--steps", type=int, nargs="+", default=[3, 20], help="inner steps of each timed adaptation")
    p.add_argument("--inner-lr", type=float, default=20.0)
    p.add_argument("--modes", nargs="+", default=["default", "reduce-overhead"])
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    device = torch.device(args.device)
    bf16 = device.type == "cuda"
    torch.manual_seed(0)
    model = attach_speaker_params(ConformerCTC(ModelConfig(size=args.size), 30), args.param_set).to(device).eval()
    fast, frozen = split_params(model, adapted_names(model, args.param_set))
    lrs = {k: torch.tensor(args.inner_lr, device=device) for k in fast}
    eager = ctc_task_loss(model, frozen, bf16=bf16)
    support = support_batch(args.shots, args.frames, 30, 0, device)
    reference = {s: adapt_test_time(eager, fast, support, lrs, s) for s in args.steps}
    eager_seconds = {s: timed(lambda s=s: adapt_test_time(eager, fast, support, lrs, s), args.repeats, device)
                     for s in args.steps}
    rows = []
    for mode in args.modes:
        torch._dynamo.reset()
        compiled = torch.compile(eager, mode=mode)
        compiled.prepare = eager.prepare  # the subsampling's output, computed once per adaptation, as eager
        row = {"mode": mode}
        try:
            start = time.perf_counter()
            adapt_test_time(compiled, fast, support, lrs, args.steps[0])
            sync(device)
            row["first_call_seconds"] = round(time.perf_counter() - start, 2)
            for s in args.steps:
                seconds = timed(lambda s=s, c=compiled: adapt_test_time(c, fast, support, lrs, s), args.repeats, device)
                out = adapt_test_time(compiled, fast, support, lrs, s)
                row[f"steps_{s}"] = {"seconds": round(seconds, 4), "eager_seconds": round(eager_seconds[s], 4),
                                     "speedup": round(eager_seconds[s] / seconds, 3),
                                     "max_abs_difference": float(max((out[k] - reference[s][k]).abs().max()
                                                                     for k in out))}
            if args.frames2:
                other = support_batch(args.shots, args.frames2, 30, 1, device)
                start = time.perf_counter()
                adapt_test_time(compiled, fast, other, lrs, args.steps[0])
                sync(device)
                row["second_shape_first_call_seconds"] = round(time.perf_counter() - start, 2)
        except Exception as e:  # noqa: BLE001 - a mode that fails to compile is a result, the others still run
            row["error"] = f"{type(e).__name__}: {str(e)[:500]}"
        rows.append(row)
        print(json.dumps(row), flush=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(json.dumps({"benchmark": "compile_adapt", "model": args.size, "param_set": args.param_set,
                      "shots": args.shots, "frames_per_utt": args.frames,
                      "precision": "bf16 autocast" if bf16 else "fp32", "statistic": f"median of {args.repeats}",
                      "rows": rows, "machine": {"device": name, "cores": os.cpu_count(),
                                                "threads": torch.get_num_threads(), "torch": torch.__version__}},
                     indent=1))


if __name__ == "__main__":
    main()
