#!/usr/bin/env python3
"""Adapting S speakers at once, replayed from a CUDA graph vs run eagerly. Prints JSON.

The batched GPU path is bound by kernel launches (benchmarks/README.md: the host issues thousands of small kernels
per inner step while the GPU idles). A CUDA graph records every kernel of the whole adaptation (all inner steps) once
and replays them with one launch; new speakers' features are copied into the recorded input tensors first. This
script records `batched_adapt` for each S with one CTC (--ctc ops: the tensor-op CTC, device ops only; vmappable:
the fused CTC, whose kernels read the lengths on the host and so may refuse to be recorded: the error is reported;
run it in its own process, since a failed recording can leave the CUDA context unusable), checks that the replay
gives the eager result on new speakers, and times both (median of --repeats, the input copy included in the replay).
    python benchmarks/cuda_graph_adapt.py [--ctc ops|vmappable] [--speakers 16 64 256] [--steps 20] [--fp32]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from common import random_batch

from speechmeta.meta.batched import KEYS, batched_adapt, stack_batches
from speechmeta.meta.inner import ctc_task_loss
from speechmeta.model.adapt_params import adapted_names, attach_speaker_params, split_params
from speechmeta.model.conformer import ConformerCTC, ModelConfig


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def record(fn, warmups: int = 2) -> tuple[torch.cuda.CUDAGraph, dict]:
    """fn() recorded as a CUDA graph, after warm-up runs on a side stream (as torch.cuda.graph asks)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warmups):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()
    return graph, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--speakers", type=int, nargs="+", default=[16, 64, 256])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--shots", type=int, default=5)
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    p.add_argument("--ctc", choices=["ops", "vmappable"], default="ops")
    args = p.parse_args()
    device = torch.device("cuda")
    bf16 = not args.fp32
    torch.manual_seed(0)
    model = attach_speaker_params(ConformerCTC(ModelConfig(size="small"), 30), "lhuc").to(device).eval()
    fast, frozen = split_params(model, adapted_names(model, "lhuc"))
    lrs = {k: torch.tensor(20.0, device=device) for k in fast}
    losses = {"ops": ctc_task_loss(model, frozen, twice_differentiable=True, bf16=bf16),
              "vmappable": ctc_task_loss(model, frozen, vmappable=True, bf16=bf16)}
    losses = {args.ctc: losses[args.ctc]}
    rows = []
    for s in args.speakers:
        supports = [random_batch(args.shots, args.frames, 1000 + i, device) for i in range(s)]
        fresh = stack_batches([random_batch(args.shots, args.frames, 5000 + i, device) for i in range(s)])
        for name, loss in losses.items():
            row = {"speakers": s, "ctc": name, "steps": args.steps}
            batched_adapt(loss, fast, lrs, supports, args.steps)  # warm-up
            eager = timed(lambda loss=loss, sp=supports: batched_adapt(loss, fast, lrs, sp, args.steps), args.repeats)
            row["eager_seconds"] = round(eager, 4)
            static = {k: v.clone() for k, v in stack_batches(supports).items()}  # the recorded inputs
            # batched_adapt stacks its list again: a one-element list of each speaker's slice of `static` keeps the
            # recorded inputs the tensors the graph reads (views, no copy).
            views = [{k: static[k][i] for k in KEYS} for i in range(s)]
            try:
                graph, out = record(lambda loss=loss, v=views: batched_adapt(loss, fast, lrs, v, args.steps))
            except Exception as e:  # noqa: BLE001 (the reason is the result)
                row["graph_error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
                torch.cuda.synchronize()
                rows.append(row)
                print(json.dumps(row), flush=True)
                continue

            def replay(graph=graph, batch=fresh, static=static):
                for k in KEYS:
                    static[k].copy_(batch[k])
                graph.replay()

            replay()
            expected = batched_adapt(loss, fast, lrs, [{k: fresh[k][i] for k in KEYS} for i in range(s)], args.steps)
            torch.cuda.synchronize()
            row["max_abs_difference"] = float(max((out[k] - expected[k]).abs().max() for k in out))
            seconds = timed(replay, args.repeats)
            row.update({"graph_seconds": round(seconds, 4), "graph_speedup": round(eager / seconds, 3),
                        "speakers_per_second": round(s / seconds, 1),
                        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)})
            del graph, out
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(json.dumps({"benchmark": "cuda_graph_adapt", "model": "small", "param_set": "lhuc", "shots": args.shots,
                      "frames_per_utt": args.frames, "precision": "fp32" if args.fp32 else "bf16 autocast",
                      "statistic": f"median of {args.repeats}", "device": torch.cuda.get_device_name(),
                      "torch": torch.__version__, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
