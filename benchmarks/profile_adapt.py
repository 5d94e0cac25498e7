#!/usr/bin/env python3
"""Where the time of adapting S speakers at once goes: torch.profiler over `batched_adapt` with the tensor-op CTC and
with the vmappable fused CTC (what speechmeta uses), and one speaker's `adapt`: the top operators by device (or CPU)
time, the number of kernel launches (CUDA) and of aten operator calls per inner step.
    python benchmarks/profile_adapt.py [--device cuda] [--speakers 64] [--steps 5]
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from speechmeta.meta.batched import batched_adapt
from speechmeta.meta.inner import adapt, ctc_task_loss
from speechmeta.model.adapt_params import adapted_names, attach_speaker_params, split_params
from speechmeta.model.conformer import ConformerCTC, ModelConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--speakers", type=int, default=64)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--frames", type=int, default=300)
    args = p.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    torch.manual_seed(0)
    model = attach_speaker_params(ConformerCTC(ModelConfig(size="small"), 30), "lhuc").to(device).eval()
    fast, frozen = split_params(model, adapted_names(model, "lhuc"))
    lrs = {k: torch.tensor(20.0, device=device) for k in fast}
    labels = args.frames // 12
    supports = [{"feats": torch.randn(5, args.frames, 80, device=device),
                 "feat_lens": torch.full((5,), args.frames, device=device),
                 "targets": torch.randint(3, 30, (5, labels), device=device),
                 "target_lens": torch.full((5,), labels, device=device)} for _ in range(args.speakers)]
    ops = ctc_task_loss(model, frozen, twice_differentiable=True, bf16=cuda)
    vmappable = ctc_task_loss(model, frozen, vmappable=True, bf16=cuda)
    fused = ctc_task_loss(model, frozen, bf16=cuda)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    for name, fn in (("batched, tensor-op CTC", lambda: batched_adapt(ops, fast, lrs, supports, args.steps)),
                     ("batched, vmappable CTC", lambda: batched_adapt(vmappable, fast, lrs, supports, args.steps)),
                     ("one speaker", lambda: adapt(fused, fast, supports[0], lrs, args.steps, True))):
        fn()
        if cuda:
            torch.cuda.synchronize()
        with profile(activities=activities) as prof:
            fn()
            if cuda:
                torch.cuda.synchronize()
        events = prof.key_averages()
        launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel",
                                                             "cudaLaunchKernelExC"))
        calls = sum(e.count for e in events if e.key.startswith("aten::"))
        print(f"=== {name}: {1 if name == 'one speaker' else args.speakers} speaker(s), {args.steps} steps, "
              f"{launches} kernel launches ({launches / args.steps:.0f} per step), {calls} aten calls "
              f"({calls / args.steps:.0f} per step)")
        print(events.table(sort_by="cuda_time_total" if cuda else "cpu_time_total", row_limit=18))


if __name__ == "__main__":
    main()
