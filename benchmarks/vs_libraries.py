#!/usr/bin/env python3
"""Meta-gradients of FOMAML, first-order Meta-SGD and second-order MAML: speechmeta's inner loop (what meta-training's
speaker loop runs: plain autograd, `autograd_gradient`) vs the `higher` and `learn2learn` libraries on the same model
and tasks. Prints JSON.

The inner SGD steps adapt the LHUC parameters (`--param-set lhuc`, the base weights frozen) or every weight (`all`,
what the recipes meta-train). MAML differentiates the query CTC loss (tensor-op CTC) through the steps; FOMAML and
Meta-SGD hold the inner gradients constant and use PyTorch's fused CTC, Meta-SGD also differentiating by its rates:
one per tensor (`--rates tensor`, speechmeta's default) or one per weight (`element`, as learn2learn's `MetaSGD`
always has them). Each library is used the way its documentation shows:
- `higher`: `innerloop_ctx` over `torch.optim.SGD`; FOMAML with `track_higher_grads=False` and the query gradient
  taken at the adapted weights; Meta-SGD with one parameter group per tensor and the rates passed as `override`.
- `learn2learn`: `MAML(model, lr, first_order=...)` (`allow_nograd=True` when base weights are frozen), `clone()`,
  `adapt(loss)` per inner step, then `backward()` of the query loss; Meta-SGD with `MetaSGD(model, lrs=...,
  first_order=True)`, which adapts every parameter with one rate per weight, so it runs with `--param-set all --rates
  element` only.
The meta-gradients are compared (max abs difference) and the seconds per task timed, the sides alternating task by
task. Neither library is a dependency of speechmeta (the `bench` extra has `higher`). learn2learn 0.2.0 has no wheel
for Python >= 3.10 and its sdist's pre-generated Cython C does not compile on 3.11 (`longintrepr.h`); regenerated
with Cython 3 it builds, and imports with `gym` and `torchvision` beside it (`benchmarks/learn2learn.sh` installs
them into a folder for PYTHONPATH).
    python benchmarks/vs_libraries.py [--device cpu|cuda] [--size small] [--inner-steps 3] [--tasks 4] \
        [--param-set lhuc|all] [--rates tensor|element] [--libraries higher learn2learn] \
        [--algorithms fomaml metasgd maml]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
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


def batch_loss(fmodel, batch: dict, second_order: bool) -> torch.Tensor:
    log_probs, lens = fmodel(batch["feats"], batch["feat_lens"])
    return ctc_loss(log_probs, batch["targets"], lens, batch["target_lens"], twice_differentiable=second_order)


def higher_meta_gradient(higher, algorithm: str, model, names: list[str], support: dict, query: dict,
                         lrs: dict, steps: int) -> dict:
    """The usual `higher` code for each algorithm; returns {name: meta-gradient} (Meta-SGD also {"lr:" + name: ...})."""
    params = [p for n, p in model.named_parameters() if n in names]
    for p in params:
        p.grad = None
    second_order = algorithm == "maml"

    def loss(fmodel, b):
        return batch_loss(fmodel, b, second_order)

    def detach(grads):
        return [None if g is None else g.detach() for g in grads]  # None: the frozen weights

    if algorithm == "metasgd":  # one group per tensor, each with its own differentiable rate(s)
        rates = [lrs[n].detach().clone().requires_grad_() for n in names]
        optimizer = torch.optim.SGD([{"params": [p]} for p in params], lr=1.0)
        with higher.innerloop_ctx(model, optimizer, copy_initial_weights=False, override={"lr": rates}) as (f, opt):
            for _ in range(steps):
                opt.step(loss(f, support), grad_callback=detach)
            loss(f, query).backward()
        out = {n: p.grad.detach().clone() for n, p in zip(names, params, strict=True)}
        return out | {"lr:" + n: r.grad.detach().clone() for n, r in zip(names, rates, strict=True)}
    optimizer = torch.optim.SGD(params, lr=float(lrs[names[0]].flatten()[0]))
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


def learn2learn_meta_gradient(l2l, algorithm: str, model, names: list[str], support: dict, query: dict,
                              lrs: dict, steps: int) -> dict:
    """The usual learn2learn code for each algorithm (clone, adapt per inner step, backward of the query loss)."""
    params = dict(model.named_parameters())
    for p in params.values():
        p.grad = None
    second_order = algorithm == "maml"
    if algorithm == "metasgd":  # MetaSGD adapts every parameter, one rate per weight
        rates = torch.nn.ParameterList([torch.nn.Parameter(lrs[n].detach().clone()) for n in params])
        learner = l2l.algorithms.MetaSGD(model, first_order=True, lrs=rates).clone()
    else:
        learner = l2l.algorithms.MAML(model, lr=float(lrs[names[0]].flatten()[0]), first_order=not second_order,
                                      allow_nograd=len(names) < len(params)).clone()
    for _ in range(steps):
        learner.adapt(batch_loss(learner, support, second_order))
    batch_loss(learner, query, second_order).backward()
    out = {n: params[n].grad.detach().clone() for n in names}
    if algorithm == "metasgd":
        out |= {"lr:" + n: r.grad.detach().clone() for n, r in zip(params, rates, strict=True)}
    return out


REFERENCES = {"higher": higher_meta_gradient, "learn2learn": learn2learn_meta_gradient}


def unsupported(library: str, algorithm: str, param_set: str, rates: str) -> str | None:
    """Why `library` cannot run `algorithm` in this setting as its documentation shows, or None."""
    if library == "learn2learn" and algorithm == "metasgd" and (param_set != "all" or rates != "element"):
        return "learn2learn's MetaSGD adapts every weight with one rate per weight: --param-set all --rates element"
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--size", default="small")
    p.add_argument("--shots", type=int, default=5)
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--inner-steps", type=int, default=3)
    p.add_argument("--inner-lr", type=float, default=None, help="default: 1.0 for lhuc, 0.03 for all")
    p.add_argument("--param-set", choices=["lhuc", "all"], default="lhuc")
    p.add_argument("--rates", choices=["tensor", "element"], default="tensor", help="Meta-SGD's rates")
    p.add_argument("--tasks", type=int, default=4)
    p.add_argument("--libraries", nargs="+", choices=list(REFERENCES), default=["higher"])
    p.add_argument("--algorithms", nargs="+", default=["fomaml", "metasgd", "maml"])
    args = p.parse_args()
    libraries = {name: importlib.import_module(name) for name in args.libraries}  # here, so that --help works
    inner_lr = args.inner_lr if args.inner_lr is not None else {"lhuc": 1.0, "all": 0.03}[args.param_set]
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = attach_speaker_params(ConformerCTC(ModelConfig(size=args.size, dropout=0.0), 30), args.param_set)
    model = model.to(device)
    with torch.no_grad():  # LHUC away from its zero init, so that the inner steps see a generic point
        for n, v in model.named_parameters():
            if ".speaker." in n:
                v.copy_(0.1 * torch.randn_like(v))
    names = adapted_names(model, args.param_set)
    for n, v in model.named_parameters():
        v.requires_grad_(n in names)
    fast, frozen = split_params(model, names)
    tasks = [tuple(random_batch(args.shots, args.frames, 2 * i + j, device) for j in (0, 1))
             for i in range(args.tasks)]

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    results = {}
    for algorithm in args.algorithms:
        element = algorithm == "metasgd" and args.rates == "element"
        lrs = {k: torch.full_like(v, inner_lr) if element else torch.tensor(inner_lr, device=device)
               for k, v in fast.items()}
        loss = ctc_task_loss(model, frozen, twice_differentiable=algorithm == "maml")

        def ours(s, q, algorithm=algorithm, loss=loss, lrs=lrs):  # what meta-training's speaker loop runs
            g, g_lrs = autograd_gradient(algorithm, loss, fast, lrs, s, q, args.inner_steps, first_order=True)
            return g | {"lr:" + k: v for k, v in (g_lrs or {}).items()}

        sides = {"speechmeta": ours}
        row = {}
        for name, library in libraries.items():
            why = unsupported(name, algorithm, args.param_set, args.rates)
            if why:
                row[f"{name}_skipped"] = why
                continue
            sides[name] = (lambda s, q, name=name, library=library, algorithm=algorithm, lrs=lrs:
                           REFERENCES[name](library, algorithm, model, names, s, q, lrs, args.inner_steps))
        times, grads = {label: [] for label in sides}, {}
        for fn in sides.values():
            fn(*tasks[0])  # warm-up
        for s, q in tasks:  # alternating, so that the machine's noise hits every side alike
            for label, fn in sides.items():
                sync()
                start = time.perf_counter()
                grads[label] = fn(s, q)
                sync()
                times[label].append(time.perf_counter() - start)
        row |= {f"{label}_seconds_per_task": round(statistics.median(t), 4) for label, t in times.items()}
        ours_grad = grads["speechmeta"]
        row["max_abs_meta_gradient"] = float(max(v.abs().max() for v in ours_grad.values()))
        for label in list(sides)[1:]:
            row[f"{label}_over_speechmeta"] = round(row[f"{label}_seconds_per_task"]
                                                    / row["speechmeta_seconds_per_task"], 3)
            theirs = grads[label]
            assert ours_grad.keys() == theirs.keys(), (sorted(ours_grad), sorted(theirs))
            row[f"max_abs_difference_from_{label}"] = float(max((ours_grad[k] - theirs[k]).abs().max()
                                                                 for k in ours_grad))
        results[algorithm] = row
        print(json.dumps({algorithm: row}), flush=True)
    print(json.dumps({
        "benchmark": "vs_libraries", "model": args.size, "param_set": args.param_set, "rates": args.rates,
        "inner_lr": inner_lr, "shots": args.shots, "query": args.shots, "frames_per_utt": args.frames,
        "inner_steps": args.inner_steps, "statistic": f"median over {args.tasks} tasks",
        "versions": {name: importlib.metadata.version(name) for name in libraries},
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", "results": results,
    }, indent=1))


if __name__ == "__main__":
    main()
