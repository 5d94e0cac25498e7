#!/usr/bin/env python3
"""Meta-gradients of FOMAML, first-order Meta-SGD and second-order MAML: speechmeta's inner loop (what meta-training's
speaker loop runs: plain autograd, `autograd_gradient`) vs the
`higher` library on the same model and tasks (learn2learn, the other reference, does not install: no wheel for
Python 3.12, and on 3.11 the 0.2.0 sdist's pre-generated Cython C fails to compile, needing `longintrepr.h`).
Prints JSON.

The inner SGD steps adapt the LHUC parameters, the base weights frozen. MAML differentiates the query CTC loss
(tensor-op CTC) through the steps; FOMAML and Meta-SGD hold the inner gradients constant and use PyTorch's fused CTC,
Meta-SGD also differentiating by its per-tensor rates. The `higher` side is written the way its documentation shows
(`innerloop_ctx` over `torch.optim.SGD`; FOMAML with `track_higher_grads=False` and the query gradient taken at the
adapted weights; Meta-SGD with one parameter group per tensor and the rates passed as `override`). The meta-gradients
are compared (max abs difference) and the seconds per task timed, the two sides alternating task by task. `higher` is
not a dependency of speechmeta: install it for this script only (`pip install higher`, the `bench` extra).
    python benchmarks/vs_higher.py [--device cpu|cuda] [--size small] [--inner-steps 3] [--tasks 4] \
        [--algorithms fomaml metasgd maml]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from common import random_batch

from speechmeta.meta.algorithms import autograd_gradient
from speechmeta.meta.inner import ctc_task_loss
from speechmeta.model.adapt_params import adapted_names, attach_speaker_params, split_params
from speechmeta.model.conformer import ConformerCTC, ModelConfig
from speechmeta.model.ctc import ctc_loss


def higher_meta_gradient(higher, algorithm: str, model, names: list[str], support: dict, query: dict,
                         lrs: dict, steps: int) -> dict:
    """The usual `higher` code for each algorithm; returns {name: meta-gradient} (Meta-SGD also {"lr:" + name: ...})."""
    params = [p for n, p in model.named_parameters() if n in names]
    for p in params:
        p.grad = None
    second_order = algorithm == "maml"

    def loss(fmodel, b):
        log_probs, lens = fmodel(b["feats"], b["feat_lens"])
        return ctc_loss(log_probs, b["targets"], lens, b["target_lens"], twice_differentiable=second_order)

    def detach(grads):
        return [None if g is None else g.detach() for g in grads]  # None: the frozen weights

    if algorithm == "metasgd":  # one group per tensor, each with its own differentiable rate
        rates = [lrs[n].detach().clone().requires_grad_() for n in names]
        optimizer = torch.optim.SGD([{"params": [p]} for p in params], lr=1.0)
        with higher.innerloop_ctx(model, optimizer, copy_initial_weights=False, override={"lr": rates}) as (f, opt):
            for _ in range(steps):
                opt.step(loss(f, support), grad_callback=detach)
            loss(f, query).backward()
        out = {n: p.grad.detach().clone() for n, p in zip(names, params, strict=True)}
        return out | {"lr:" + n: r.grad.detach().clone() for n, r in zip(names, rates, strict=True)}
    optimizer = torch.optim.SGD(params, lr=float(lrs[names[0]]))
    with higher.innerloop_ctx(model, optimizer, copy_initial_weights=False,
                              track_higher_grads=second_order) as (fmodel, diffopt):
        for _ in range(steps):
            diffopt.step(loss(fmodel, support))
        if second_order:
            loss(fmodel, query).backward()
            return {n: p.grad.detach().clone() for n, p in zip(names, params, strict=True)}
        fast = dict(zip([n for n, _ in model.named_parameters()], fmodel.parameters(), strict=True))
        grads = torch.autograd.grad(loss(fmodel, query), [fast[n] for n in names])  # FOMAML: at the adapted weights
        return dict(zip(names, grads, strict=True))


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
    p.add_argument("--algorithms", nargs="+", default=["fomaml", "metasgd", "maml"])
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
    tasks = [tuple(random_batch(args.shots, args.frames, 2 * i + j, device) for j in (0, 1))
             for i in range(args.tasks)]

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    results = {}
    for algorithm in args.algorithms:
        loss = ctc_task_loss(model, frozen, twice_differentiable=algorithm == "maml")

        def ours(s, q, algorithm=algorithm, loss=loss):  # what meta-training's speaker loop runs
            g, g_lrs = autograd_gradient(algorithm, loss, fast, lrs, s, q, args.inner_steps, first_order=True)
            return g | {"lr:" + k: v for k, v in (g_lrs or {}).items()}

        def theirs(s, q, algorithm=algorithm):
            return higher_meta_gradient(higher, algorithm, model, names, s, q, lrs, args.inner_steps)

        times, grads = {"speechmeta": [], "higher": []}, {}
        for fn in (ours, theirs):
            fn(*tasks[0])  # warm-up
        for s, q in tasks:  # alternating, so that the machine's noise hits both alike
            for label, fn in (("speechmeta", ours), ("higher", theirs)):
                sync()
                start = time.perf_counter()
                grads[label] = fn(s, q)
                sync()
                times[label].append(time.perf_counter() - start)
        row = {f"{label}_seconds_per_task": round(statistics.median(t), 4) for label, t in times.items()}
        row["higher_over_speechmeta"] = round(row["higher_seconds_per_task"] / row["speechmeta_seconds_per_task"], 3)
        a, b = grads["speechmeta"], grads["higher"]
        assert a.keys() == b.keys(), (sorted(a), sorted(b))
        row["max_abs_meta_gradient_difference"] = float(max((a[k] - b[k]).abs().max() for k in a))
        row["max_abs_meta_gradient"] = float(max(a[k].abs().max() for k in a))
        results[algorithm] = row
        print(json.dumps({algorithm: row}), flush=True)
    print(json.dumps({
        "benchmark": "vs_higher", "model": args.size, "param_set": "lhuc",
        "shots": args.shots, "query": args.shots, "frames_per_utt": args.frames, "inner_steps": args.inner_steps,
        "statistic": f"median over {args.tasks} tasks", "higher": higher.__version__ if hasattr(higher, "__version__")
        else "0.2.1", "torch": torch.__version__,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", "results": results,
    }, indent=1))


if __name__ == "__main__":
    main()
