#!/usr/bin/env python3
"""What dropout's masks and the optimizer cost in a base training step, and what speechmeta's choices save.

The same step (forward, F.ctc_loss, backward, AdamW) four ways: torch's `nn.Dropout` and AdamW's default per-tensor
loop (speechmeta before 2026-12-07), each of speechmeta's two changes alone (`speechmeta.model.dropout.Dropout`,
`AdamW(fused=True)`), and both (what `speechmeta train` runs). The first is the reference; speed-ups are against it.
Also times the dropout masks alone on one feed-forward activation, checks that the four models start equal, and
with --meta times one speaker's FOMAML meta-gradient (all weights adapting, dropout on, as meta-training runs it:
`autograd_gradient`) with either dropout.

Prints JSON. The variants are interleaved over `--repeats` rounds (the median is reported) so that load on a shared
machine hits them alike.
  python benchmarks/dropout_adamw.py [--size small] [--channels 32] [--utts 8] [--frames 310] [--threads 2]
      [--repeats 5] [--steps 3] [--meta]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
from common import random_batch
from train_step import step_seconds

from speechmeta.meta.algorithms import autograd_gradient
from speechmeta.meta.inner import ctc_task_loss
from speechmeta.model.adapt_params import adapted_names, split_params
from speechmeta.model.conformer import ConformerCTC, ModelConfig
from speechmeta.model.dropout import Dropout

VARIANTS = {  # name: (speechmeta's dropout, fused AdamW)
    "torch dropout, AdamW loop": (False, False),
    "speechmeta dropout, AdamW loop": (True, False),
    "torch dropout, fused AdamW": (False, True),
    "speechmeta dropout, fused AdamW": (True, True),
}


def build(args, ours: bool, fused: bool) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = ConformerCTC(ModelConfig(size=args.size, dropout=args.dropout, subsampling_channels=args.channels),
                         vocab_size=30).train()
    if not ours:
        for module in list(model.modules()):
            for name, child in list(module.named_children()):
                if isinstance(child, Dropout):
                    setattr(module, name, torch.nn.Dropout(child.p))
    return model, torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, fused=fused)


def meta_seconds(model: torch.nn.Module, support: dict, query: dict, steps: int) -> float:
    """One speaker's FOMAML meta-gradient, 3 inner steps, all weights adapting, the model in train mode."""
    fast, frozen = split_params(model, adapted_names(model, "all"))
    loss = ctc_task_loss(model, frozen)
    lrs = {k: torch.tensor(0.03) for k in fast}
    start = time.perf_counter()
    for _ in range(steps):
        autograd_gradient("fomaml", loss, fast, lrs, support, query, 3)
    return (time.perf_counter() - start) / steps


def mask_ms(drop: torch.nn.Module, x: torch.Tensor, repeats: int = 50) -> float:
    for _ in range(3):
        drop(x)
    start = time.perf_counter()
    for _ in range(repeats):
        drop(x)
    return (time.perf_counter() - start) / repeats * 1e3


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="small")
    p.add_argument("--channels", type=int, default=32, help="model.subsampling_channels (the recipes' 32)")
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--utts", type=int, default=8)
    p.add_argument("--frames", type=int, default=310)
    p.add_argument("--steps", type=int, default=3, help="optimizer steps timed per round")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--meta", action="store_true", help="also one speaker's meta-gradient (5 support, 10 query)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    batch = random_batch(args.utts, args.frames, seed=0, device=device)
    runs = {name: (*build(args, ours, fused), []) for name, (ours, fused) in VARIANTS.items()}
    first = [torch.cat([q.detach().flatten() for q in model.parameters()]) for model, _, _ in runs.values()]
    assert all(torch.equal(first[0], f) for f in first[1:]), "the variants must start from the same weights"
    for model, opt, _ in runs.values():
        step_seconds(model, opt, batch, 2, device)  # warm-up: allocator, oneDNN primitives
    for _ in range(args.repeats):
        for model, opt, times in runs.values():
            times.append(step_seconds(model, opt, batch, args.steps, device))
    reference = statistics.median(next(iter(runs.values()))[2])
    results = [{"variant": name, "seconds_per_step": round(statistics.median(times), 4),
                "speedup_vs_first": round(reference / statistics.median(times), 3)}
               for name, (_, _, times) in runs.items()]
    meta = {}
    if args.meta:  # the demo's tasks: 5 support and 10 query utterances
        support, query = (random_batch(n, args.frames, seed=n, device=device) for n in (5, 10))
        models = {"torch nn.Dropout": build(args, False, False)[0], "speechmeta Dropout": build(args, True, False)[0]}
        times = {name: [] for name in models}
        for model in models.values():
            meta_seconds(model, support, query, 1)
        for _ in range(args.repeats):
            for name, model in models.items():
                times[name].append(meta_seconds(model, support, query, 1))
        meta = {name: round(statistics.median(v), 4) for name, v in times.items()}
        meta["speedup"] = round(meta["torch nn.Dropout"] / meta["speechmeta Dropout"], 3)
    d_model = ModelConfig(size=args.size).resolved()["d_model"]
    hidden = torch.randn(args.utts, args.frames // 4, 4 * d_model)  # a feed-forward module's inner activation
    masks = {"torch nn.Dropout": mask_ms(torch.nn.Dropout(args.dropout).train(), hidden),
             "speechmeta Dropout": mask_ms(Dropout(args.dropout).train(), hidden)}
    print(json.dumps({"size": args.size, "subsampling_channels": args.channels, "dropout": args.dropout,
                      "batch": f"{args.utts} x {args.frames} frames", "threads": args.threads,
                      "repeats": args.repeats, "steps_per_repeat": args.steps, "results": results,
                      "dropout_alone_ms": {"activation": list(hidden.shape),
                                           **{k: round(v, 3) for k, v in masks.items()},
                                           "speedup": round(masks["torch nn.Dropout"] / masks["speechmeta Dropout"],
                                                            2)},
                      **({"meta_gradient_seconds": meta} if meta else {}),
                      "machine": f"{platform.machine()}, {torch.backends.cpu.get_cpu_capability()}",
                      "torch": torch.__version__}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
