#!/usr/bin/env python3
"""Decoding speed: real-time factor (decoding seconds / audio seconds) of greedy and prefix beam search, one thread.

Prints JSON. The same model and utterances for every method, interleaved over `--repeats` rounds (the median is
reported), so that load on a shared machine hits them alike; model loading and feature reading are not counted.
Methods: greedy, beam (no LM), beam + word n-gram LM (+ lexicon when given). Goal (benchmarks issue): greedy
RTF <= 0.02 for the `small` model on one CPU thread.
  python benchmarks/decode_rtf.py --model recipes/synth/exp/base/average.pt --data recipes/synth/data/test \\
      --lm recipes/synth/data/lang_char/lm3.json [--speakers 4] [--repeats 3]
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from speechmeta.data.datadir import DataDir  # noqa: E402
from speechmeta.data.subset import subset_data_dir  # noqa: E402
from speechmeta.decode import decode  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True, help="data dir with features (compute-feats)")
    p.add_argument("--lm", type=Path, help="word n-gram LM (train-lm) for the beam + LM method")
    p.add_argument("--lexicon", type=Path)
    p.add_argument("--speakers", type=int, default=4, help="decode the utterances of the first N speakers")
    p.add_argument("--beam-size", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(1)
    methods = {"greedy": {"method": "greedy"}, "beam": {"method": "beam", "beam_size": args.beam_size}}
    if args.lm:
        methods["beam_lm"] = {"method": "beam", "beam_size": args.beam_size, "lm_path": args.lm, "lm_weight": 0.3,
                              "word_bonus": 1.0, "lexicon_path": args.lexicon}
    rtfs: dict[str, list[float]] = {m: [] for m in methods}
    with tempfile.TemporaryDirectory() as tmp:
        data = subset_data_dir(args.data, Path(tmp) / "data", DataDir.load(args.data).spks[: args.speakers])
        audio = 0.0
        for _ in range(args.repeats):
            for name, kwargs in methods.items():
                result = decode(args.model, data, Path(tmp) / name, **kwargs)
                rtfs[name].append(result["rtf"])
                audio = result["audio_seconds"]
    out = {"model": str(args.model), "data": str(args.data), "speakers": args.speakers, "audio_seconds": audio,
           "threads": 1, "beam_size": args.beam_size, "repeats": args.repeats,
           "rtf": {m: round(statistics.median(v), 5) for m, v in rtfs.items()},
           "rtf_all": {m: [round(x, 5) for x in v] for m, v in rtfs.items()},
           "goal_greedy_rtf_at_most": 0.02, "machine": f"{platform.machine()}, torch {torch.__version__}"}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
