#!/usr/bin/env python3
"""Faults, the slow cases: SIGKILL at random moments of compute-feats, train, meta-train and the synth recipe
(stages 0-4), each followed by a rerun of the same command and a comparison with an uninterrupted reference run; and
a full disk while train and meta-train write a checkpoint (a file-size limit, as without root there is no tiny
tmpfs), then a rerun with space again.

Each case runs in the same folder as its reference (renamed away when finished), so files that record paths compare
equal. A kill is SIGKILL to the whole process group at a moment drawn uniformly in the first 95% of the reference's
working time (from its first written file to its end: a kill while Python imports torch would prove little). A case
passes when the killed run left no unfinished file under a finished file's name, the rerun exits 0 and every
finished output of the reference is there with the same content (checkpoints: every tensor equal, i.e. bit-for-bit
training on CPU with the same seed; features: identical files). Not compared: run records and logs, the wall-clock
`seconds` column of metrics.csv.

Prints JSON: cases_tried, cases_passed, kills_survived, bytes_lost (bytes of finished outputs missing or different
after the rerun, or of earlier checkpoints changed by a failed write: must be 0) and each case.
Usage: python benchmarks/faults.py [--kills N] [--seed S] [--work DIR]
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"  # every command of every run on one thread: bit-for-bit comparisons, a shared machine

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
import numpy as np  # noqa: E402
import torch  # noqa: E402
from conftest import cli, kill_when, output_differences, output_files, partial_files, tiny_base, tone, write_wav  # noqa: E402

from speechmeta.data.datadir import write_data_dir  # noqa: E402

TRAIN = ["model.size=tiny", "model.dropout=0.1", "train.epochs=3", "train.max_frames=1500",
         "train.checkpoint_every=1", "train.warmup_steps=5", "train.average_last=2", "train.device=cpu"]
META = ["meta.algorithm=metasgd", "meta.param_set=lhuc", "meta.meta_steps=16", "meta.speakers_per_batch=2",
        "meta.shots=2", "meta.query=2", "meta.inner_steps=2", "meta.eval_every=4", "meta.eval_tasks=1",
        "meta.checkpoint_every=1", "meta.device=cpu"]
RECIPE_TRAIN = "cmvn: utterance\nmodel:\n  size: tiny\n  dropout: 0.1\ntrain:\n  epochs: 2\n  lr: 3.0e-3\n" \
               "  warmup_steps: 10\n  max_frames: 4000\n  average_last: 1\n  checkpoint_every: 2\n"
RECIPE_META = "meta:\n  param_set: lhuc\n  inner_steps: 1\n  inner_lr: 5\n  speakers_per_batch: 2\n  shots: 2\n" \
              "  query: 2\n  meta_steps: 6\n  eval_every: 2\n  eval_tasks: 1\n  checkpoint_every: 1\n"
DONE_MARKERS = ("data/.prep.done", "data/.feats.done", "data/.splits.done", "exp/.base.done", "exp/.meta.done")


class Job:
    """A command whose outputs all land in `run`: `prepare(run)` lays out its inputs, `cmd(run)` is the command (the
    same for the first run and the rerun: every one resumes), `started(run)` holds once it writes its first file,
    `state(run)` says how far a killed run got."""

    def __init__(self, name: str, prepare: Callable[[Path], None], cmd: Callable[[Path], list[str]],
                 started: Callable[[Path], bool], state: Callable[[Path], str], env: dict | None = None):
        self.name, self.prepare, self.cmd, self.started, self.state, self.env = name, prepare, cmd, started, state, env


def run_to_end(job: Job, run: Path) -> tuple[subprocess.CompletedProcess, float, float]:
    """(result, seconds, seconds until its first written file)."""
    began = time.monotonic()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(job.cmd(run), stdout=out, stderr=err, text=True, env=job.env)
        started = None
        while proc.poll() is None:
            if started is None and job.started(run):
                started = time.monotonic() - began
            time.sleep(0.005)
        seconds = time.monotonic() - began
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())
    return result, seconds, seconds if started is None else started


def rerun_note(job: Job, stderr: str, stdout: str) -> str:
    """What the rerun says it reused."""
    if job.name.startswith("recipe"):
        return "stages run again: " + ", ".join(line.split(":")[0] for line in stdout.splitlines()
                                                   if line.startswith("stage "))
    return next((line for line in stderr.splitlines() if "resumed from" in line or "from an earlier run" in line),
                "started over (nothing to resume)")


def newest_checkpoint(run: Path) -> str:
    pts = sorted(run.glob("*.pt"), key=lambda p: p.stat().st_mtime)
    return f"newest checkpoint {pts[-1].name}" if pts else "no checkpoint yet"


def kill_case(job: Job, ref: Path, run: Path, work_seconds: float, rng: random.Random, number: int) -> dict:
    """Kill `job` at a random moment of its work, inspect what it left, rerun it to the end, compare with `ref`."""
    case = {"case": f"SIGKILL {job.name} #{number}", "reference_work_seconds": round(work_seconds, 2)}
    draws, killed = 0, False
    while not killed and draws < 3:  # a draw after the run's end kills nothing: draw again
        draws += 1
        shutil.rmtree(run, ignore_errors=True)
        run.mkdir(parents=True)
        job.prepare(run)
        moment = rng.uniform(0, 0.95) * work_seconds
        killed = kill_when(job.cmd(run), lambda: job.started(run), moment, job.env)
    case.update(killed=killed, kill_after_start_seconds=round(moment, 2), draws=draws, state_at_kill=job.state(run))
    case["unfinished_files_under_final_names"] = partial_files(ref, run)
    case["temporary_files_left_by_kill"] = len(list(run.rglob("*.tmp")))
    r, seconds, _ = run_to_end(job, run)
    diffs = output_differences(ref, run)
    finished = output_files(ref).values()
    case.update(rerun_exit=r.returncode, rerun_seconds=round(seconds, 1), rerun=rerun_note(job, r.stderr, r.stdout),
                rerun_traceback="Traceback" in r.stderr, files_compared=len(finished),
                bytes_compared=sum(f.stat().st_size for f in finished if not f.is_symlink()),
                differences=[f"{rel} ({why}, {size} bytes)" for rel, size, why in diffs],
                bytes_lost=sum(size for _, size, _ in diffs),
                temporary_files_after_rerun=len(list(run.rglob("*.tmp"))))
    case["passed"] = bool(killed and r.returncode == 0 and not diffs and not case["unfinished_files_under_final_names"]
                          and not case["rerun_traceback"])
    if r.returncode != 0:
        case["rerun_stderr_tail"] = r.stderr[-1500:]
    shutil.rmtree(run)
    return case


def disk_full_case(job: Job, ref: Path, run: Path) -> dict:
    """Kill `job` once its first checkpoint is written, rerun it where no file may grow past half a checkpoint (the
    next checkpoint write fails with EFBIG, as a full disk fails with ENOSPC), then rerun it with space."""
    case = {"case": f"full disk during a checkpoint write of {job.name}"}
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    job.prepare(run)
    kill_when(job.cmd(run), lambda: bool(list(run.glob("step-*.pt"))), 0.0, job.env)
    before = {p.name: p.read_bytes() for p in run.glob("*.pt")}
    limit = min(len(b) for b in before.values()) // 2

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    r = subprocess.run(job.cmd(run), capture_output=True, text=True, env=job.env, timeout=600, preexec_fn=small_disk)
    after = {p.name: p.read_bytes() for p in run.glob("*.pt")}
    changed = [name for name in before if after.get(name) != before[name]]
    case.update(checkpoints_before=sorted(before), file_size_limit=limit, full_disk_exit=r.returncode,
                full_disk_message=next((line for line in r.stderr.splitlines() if "error:" in line), ""),
                full_disk_traceback="Traceback" in r.stderr, earlier_checkpoints_changed=changed,
                new_files_under_checkpoint_names=sorted(set(after) - set(before)),
                temporary_files_left=len(list(run.rglob("*.tmp"))))
    r2, _, _ = run_to_end(job, run)
    diffs = output_differences(ref, run)
    case.update(rerun_exit=r2.returncode, differences=[f"{rel} ({why}, {size} bytes)" for rel, size, why in diffs],
                bytes_lost=sum(size for _, size, _ in diffs) + sum(len(before[n]) for n in changed))
    case["passed"] = bool(r.returncode == 1 and not case["full_disk_traceback"] and not changed
                          and not case["new_files_under_checkpoint_names"] and not case["temporary_files_left"]
                          and r2.returncode == 0 and not diffs)
    shutil.rmtree(run)
    return case


def make_jobs(work: Path) -> list[Job]:
    corpus = work / "corpus"
    tiny_base(corpus, 6, 2, 6, ["model.dropout=0.0"])
    audio = work / "audio"  # compute-feats input: 4 speakers x 80 utterances of 2-4 s, 22.05 kHz stereo
    wav, text, utt2spk = {}, {}, {}
    for s in range(4):
        for u in range(80):
            utt = f"spk{s}-utt{u:02d}"
            x = tone(2.0 + (u % 5) / 2, 22050, freq=150 + 40 * s + 7 * u, seed=100 * s + u)
            wav[utt] = str(write_wav(audio / f"{utt}.wav", np.stack([x, x[::-1]], axis=1), 22050))
            text[utt], utt2spk[utt] = f"TONE NUMBER {u}", f"spk{s}"
    write_data_dir(work / "feats_input", wav, text, utt2spk)

    recipe_env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    (work / "tiny.yaml").write_text(RECIPE_TRAIN)
    (work / "tiny_meta.yaml").write_text(RECIPE_META)

    def done_markers(run: Path) -> str:
        done = [m for m in DONE_MARKERS if (run / m).exists()]
        return f"stages done: {len(done)} ({', '.join(done) or 'none'})"

    return [
        Job("compute-feats", lambda run: shutil.copytree(work / "feats_input", run / "data"),
            lambda run: cli("compute-feats", run / "data", "--no-progress"),
            lambda run: (run / "data" / "fbank" / "conf.json").exists(),
            lambda run: f"{len(list((run / 'data' / 'fbank').glob('raw_fbank.*.json')))} of 8 chunks finished, "
                        f"feats.scp {'written' if (run / 'data' / 'feats.scp').exists() else 'not yet'}"),
        Job("train", lambda run: None,
            lambda run: cli("train", "--train-dir", corpus / "train", "--valid-dir", corpus / "test", "--units",
                            corpus / "units.txt", "--exp-dir", run, "--resume", "--no-progress", *TRAIN),
            lambda run: (run / "config.yaml").exists(), newest_checkpoint),
        Job("meta-train", lambda run: None,
            lambda run: cli("meta-train", "--base", corpus / "base" / "average.pt", "--train-dir", corpus / "train",
                            "--valid-dir", corpus / "test", "--exp-dir", run, "--resume", "--no-progress", *META),
            lambda run: (run / "config.yaml").exists(), newest_checkpoint),
        Job("recipe synth stages 0-4", lambda run: None,
            lambda run: ["bash", str(REPO / "recipes" / "synth" / "run.sh"), "--data", str(run / "data"), "--exp",
                         str(run / "exp"), "--train-conf", str(work / "tiny.yaml"), "--meta-conf",
                         str(work / "tiny_meta.yaml"), "--meta-algorithms", "fomaml", "--speakers", "8", "--heldout",
                         "4", "--dev-speakers", "2", "--utts-per-speaker", "10", "--valid-utts", "2", "--shots", "2",
                         "--nj", "1", "--device", "cpu", "--stop-stage", "4"],
            lambda run: (run / "exp" / "runs").exists(), done_markers, recipe_env),
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, default=3, help="SIGKILLs per command, each at its own random moment")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    p.add_argument("--work", type=Path, help="work folder (default: a temporary one, removed at the end)")
    args = p.parse_args()
    began = time.monotonic()
    work = args.work or Path(tempfile.mkdtemp(prefix="speechmeta-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    cases, references = [], {}
    try:
        with contextlib.redirect_stdout(sys.stderr):  # the corpus generator reports on stdout: keep it for JSON
            jobs = make_jobs(work)
        for job in jobs:
            run, ref = work / "runs" / job.name.split()[0], work / "refs" / job.name.split()[0]
            run.mkdir(parents=True)
            job.prepare(run)
            r, seconds, started = run_to_end(job, run)
            if r.returncode != 0:
                raise SystemExit(f"reference run of {job.name} failed:\n{r.stderr[-3000:]}")
            ref.parent.mkdir(exist_ok=True)
            run.rename(ref)
            references[job.name] = {"seconds": round(seconds, 1), "work_seconds": round(seconds - started, 1)}
            for number in range(1, args.kills + 1):
                cases.append(kill_case(job, ref, run, seconds - started, rng, number))
                print(json.dumps({k: cases[-1][k] for k in ("case", "kill_after_start_seconds", "state_at_kill",
                                                            "passed")}), file=sys.stderr)
            if job.name in ("train", "meta-train"):
                cases.append(disk_full_case(job, ref, run))
                print(json.dumps({k: cases[-1][k] for k in ("case", "passed")}), file=sys.stderr)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    kills = [c for c in cases if c["case"].startswith("SIGKILL")]
    print(json.dumps({
        "benchmark": "faults", "kills_per_command": args.kills, "seed": args.seed,
        "cases_tried": len(cases), "cases_passed": sum(c["passed"] for c in cases),
        "kills_survived": sum(c["killed"] and c["passed"] for c in kills),
        "bytes_lost": sum(c["bytes_lost"] for c in cases),
        "reference_seconds": references, "seconds": round(time.monotonic() - began, 1), "cases": cases,
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version(), "torch": torch.__version__},
    }, indent=1))


if __name__ == "__main__":
    main()
