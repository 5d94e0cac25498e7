#!/usr/bin/env python3
"""`speechmeta compute-feats` wall-clock time, whole command (process start included, as a user waits for it), in
one process against `--nj` job processes, on a copy of a data dir's first `--utts` utterances.

Prints JSON. Three ways, interleaved over `--repeats` rounds (the median is reported) so that load on a shared
machine hits them alike, each on a fresh copy (no chunk reused):
- `one_process`: `--nj 1`;
- `jobs_forced`: `--nj N` with jobs however little the audio (what `--nj` did before 2026-12-08, except that
  this process computes the first chunk);
- `jobs_default`: `--nj N` as it runs now: jobs only when the chunks timed in the first process say they would
  save more than their start (`JOB_START_SECONDS`).
  python benchmarks/compute_feats.py --data DIR [--utts 56] [--nj 2] [--repeats 3]
(DIR: e.g. `python data_prep/fsdd.py --recordings ../shared/data/fsdd/recordings --out /tmp/fsdd`.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from speechmeta.data.compute_feats import JOB_START_SECONDS
from speechmeta.data.datadir import DataDir, write_data_dir

RUN = ("import sys, speechmeta.data.compute_feats as c; c.JOB_START_SECONDS = float(sys.argv[1]); "
       "from speechmeta.cli import main; sys.exit(main(sys.argv[2:]))")


def copy_dir(data: DataDir, utts: list[str], out: Path) -> Path:
    write_data_dir(out, wav={u: str(data.audio(u).path.resolve()) for u in utts}, text=None,
                   utt2spk={u: data.utt2spk[u] for u in utts})
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="a data dir (wav.scp without segments)")
    p.add_argument("--utts", type=int, default=0, help="its first N utterances (0: all)")
    p.add_argument("--nj", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    data = DataDir.load(args.data, need_text=False)
    if data.segments is not None:
        sys.exit(f"{args.data} has segments: give a data dir of whole recordings")
    utts = data.utts[:args.utts] if args.utts > 0 else data.utts
    ways = {"one_process": (1, JOB_START_SECONDS), "jobs_forced": (args.nj, -1.0),
            "jobs_default": (args.nj, JOB_START_SECONDS)}
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    jobs: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for name, (nj, start_seconds) in ways.items():
                d = copy_dir(data, utts, Path(tmp) / f"{name}{r}")
                began = time.perf_counter()
                subprocess.run([sys.executable, "-c", RUN, str(start_seconds), "compute-feats", str(d), "--nj", str(nj),
                                "--no-progress"], check=True, capture_output=True)
                seconds[name].append(time.perf_counter() - began)
                log = (d / "log" / "compute-feats.log").read_text()
                jobs[name] = int(log.rsplit(" by ", 1)[1].split()[0])
    median = {name: round(statistics.median(s), 3) for name, s in seconds.items()}
    print(json.dumps({
        "data": str(args.data), "utts": len(utts), "nj": args.nj, "job_start_seconds": JOB_START_SECONDS,
        "seconds_median": median, "seconds": {k: [round(x, 3) for x in v] for k, v in seconds.items()},
        "processes": jobs,
        "jobs_forced_over_one_process": round(median["jobs_forced"] / median["one_process"], 3),
        "jobs_default_over_one_process": round(median["jobs_default"] / median["one_process"], 3),
        "machine": {"cpu": platform.machine(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "torch": torch.__version__},
    }, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
