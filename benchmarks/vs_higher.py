#!/usr/bin/env python3
"""Second-order MAML meta-gradient: speechmeta's torch.func inner loop vs the `higher` library on the same model and
tasks (learn2learn, the other reference, publishes no wheel for Python 3.12). Prints JSON.

Both differentiate the query CTC loss (tensor-op CTC) through the inner SGD steps on the LHUC parameters, the base
weights frozen; the meta-gradients are compared (max abs difference) and the seconds per task timed. `higher` is not
a dependency of speechmeta: install it for this script only (`pip install higher`, the `bench` extra).
    python benchmarks/vs_higher.py [--device cpu|cuda] [--size small] [--inner-steps 3] [--tasks 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from common import random_batch

from speechmeta.meta.algorithms import meta_gradient
from speechmeta.meta.inner import ctc_task_loss
from speechmeta.model.adapt_params import adapted_names, attach_speaker_params, split_params
from speechmeta.model.conformer import ConformerCTC, ModelConfig
from speechmeta.model.ctc import ctc_loss


def higher_maml(higher, model, names: list[str], support: dict, query: dict, lr: float, steps: int) -> dict:
    """The usual `higher` MAML: innerloop_ctx over an SGD optimizer, backward of the query loss."""
    params = [p for n, p in model.named_parameters() if n in names]
    for p in params:
        p.grad = None
    optimizer = torch.optim.SGD(params, lr=lr)

    def loss(fmodel, b):
        log_probs, lens = fmodel(b["feats"], b["feat_lens"])
        return ctc_loss(log_probs, b["targets"], lens, b["target_lens"], twice_differentiable=True)

    with higher.innerloop_ctx(model, optimizer, copy_initial_weights=False) as (fmodel, diffopt):
        for _ in range(steps):
            diffopt.step(loss(fmodel, support))
        loss(fmodel, query).backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if n in names}


def main() -> None:
    import higher  # here, so that --help works without it

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--size", default="small")
    p.add_argument("--shots", type=int, default=5)
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--inner-steps", type=int, default=3)
    p.add_argument("--inner-lr", type=float, default=1.0)
    p.add_argument("--tasks", type=int, default=4)
    args = p.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = attach_speaker_params(ConformerCTC(ModelConfig(size=args.size, dropout=0.0), 30), "lhuc").to(device)
    with torch.no_grad():  # LHUC away from its zero init, so that the inner steps see a generic point
        for n, v in model.named_parameters():
            if ".speaker." in n:
                v.copy_(0.1 * torch.randn_like(v))
    names = adapted_names(model, "lhuc")
    for n, v in model.named_parameters():
        v.requires_grad_(n in names)
    fast, frozen = split_params(model, names)
    lrs = {k: torch.tensor(args.inner_lr, device=device) for k in fast}
    loss = ctc_task_loss(model, frozen, twice_differentiable=True)
    tasks = [tuple(random_batch(args.shots, args.frames, 2 * i + j, device) for j in (0, 1))
             for i in range(args.tasks)]

    def ours(s, q):
        return meta_gradient("maml", loss, fast, lrs, s, q, args.inner_steps)[0]

    def theirs(s, q):
        return higher_maml(higher, model, names, s, q, args.inner_lr, args.inner_steps)

    results, grads = {}, {}
    for label, fn in (("speechmeta", ours), ("higher", theirs)):
        fn(*tasks[0])  # warm-up
        times = []
        for s, q in tasks:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            grads[label] = fn(s, q)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        results[f"{label}_seconds_per_task"] = round(statistics.median(times), 4)
    results["higher_over_speechmeta"] = round(results["higher_seconds_per_task"]
                                              / results["speechmeta_seconds_per_task"], 3)
    a, b = grads["speechmeta"], grads["higher"]
    results["max_abs_meta_gradient_difference"] = float(max((a[k] - b[k]).abs().max() for k in a))
    results["max_abs_meta_gradient"] = float(max(a[k].abs().max() for k in a))
    print(json.dumps({
        "benchmark": "vs_higher", "algorithm": "maml (second order)", "model": args.size, "param_set": "lhuc",
        "shots": args.shots, "query": args.shots, "frames_per_utt": args.frames, "inner_steps": args.inner_steps,
        "statistic": f"median over {args.tasks} tasks", "higher": higher.__version__ if hasattr(higher, "__version__")
        else "0.2.1", "torch": torch.__version__,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", "results": results,
    }, indent=1))


if __name__ == "__main__":
    main()
