"""Shared fixtures and helpers: tiny data dirs with generated audio, a tiny trained model, the path to the real corpora
in ../shared/data, the kill-and-compare tools of the fault tests (also used by benchmarks/faults.py), and the order
the tests run in."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechmeta.data.datadir import write_data_dir

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SPEECHMETA_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


# `make test` runs two xdist workers on 2 cores: each runs one thread (torch's, and the BLAS libraries'), and so do
# the commands its tests start. With two threads each the workers' threads spin against each other: the suite took
# 12 min 52 s against 10 min 40 s (2026-12-08; until then an in-process compute_feats set one thread by accident).
# Set before any test module imports torch.
if "PYTEST_XDIST_WORKER" in os.environ:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, "1")


# The end-to-end recipe runs take minutes each. `make test` runs the suite on two workers (pytest-xdist) that take one
# test at a time, in collection order, as they free up (`--maxschedchunk 1`; by default xdist hands each worker a
# quarter of the suite at once, and one worker got every test below while the other finished 5 minutes early). So the
# longest tests go first, longest first (seconds on the 2-core AMD EPYC VM, 2026-12-08), and the short ones fill in.
LONG_FIRST = (
    "test_synth_recipe_all_stages_then_rerun_skips_them",  # 412
    "test_phone_units_from_a_lexicon_through_all_stages",  # 98
    "test_stage3_pretrains_on_synthetic_voices",  # 44
    "test_fsdd_data_stages_hold_out_test_and_dev_speakers",  # 30 and 34
    "test_meta_speakers_are_held_out_of_base_training",  # 33
    "test_full_disk_while_writing_a_checkpoint",  # 30
    "test_sigkill_of_train_then_resume",  # 29
    "test_tiny_model_overfits_four_utterances",  # 29
    "test_decode_and_score",  # 25 each
    "test_thirty_minute_recording_in_bounded_memory",  # 25
    "test_nbest_then_rescore_tuned_on_dev",  # 21
    "test_librispeech_recipe_data_stages_on_a_fixture",  # 19
    "test_custom_recipe_on_a_users_data_dirs",  # 17
    "test_two_gloo_processes_equal_one",  # 15
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next((i for i, name in enumerate(LONG_FIRST) if name in item.nodeid), len(LONG_FIRST))
    items.sort(key=rank)  # stable: the rest keeps its order


def shared_corpus(relative: str) -> Path:
    """A folder of ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"real corpus not available: {path} is absent (set SPEECHMETA_SHARED_DATA to its folder)")
    return path


def tone(seconds: float, sample_rate: int = 16000, freq: float = 440.0, seed: int = 0) -> np.ndarray:
    """A tone with some noise: non-silent audio whose spectrum is known."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    x = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.shape)
    return x.astype(np.float32)


def frame_log_probs(units: list[str], *rows: dict[str, float]) -> np.ndarray:
    """CTC log-probabilities, one frame a row, from {unit: prob} (the rest of the mass shared by the other units)."""
    out = []
    for row in rows:
        p = np.full(len(units), 1e-6)
        for unit, prob in row.items():
            p[units.index(unit)] = prob
        out.append(np.log(p / p.sum()))
    return np.array(out)


def write_wav(path: Path, samples: np.ndarray, sample_rate: int = 16000, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, sample_rate, subtype=subtype)
    return path


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def rewrite(path: Path, new_lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in new_lines))


@pytest.fixture
def make_data_dir(tmp_path):
    """make_data_dir(spks=2, utts=3, sample_rate=16000) -> a valid data dir with generated WAVs."""

    def make(spks: int = 2, utts: int = 3, sample_rate: int = 16000, name: str = "data") -> Path:
        out = tmp_path / name
        wav, text, utt2spk = {}, {}, {}
        for s in range(spks):
            spk = f"spk{s}"
            for u in range(utts):
                utt = f"{spk}-utt{u}"
                samples = tone(0.3 + 0.1 * u, sample_rate, freq=200 + 100 * s + 30 * u, seed=s * 100 + u)
                wav[utt] = str(write_wav(tmp_path / "audio" / name / f"{utt}.wav", samples, sample_rate))
                text[utt] = f"HELLO WORLD {u}"
                utt2spk[utt] = spk
        write_data_dir(out, wav, text, utt2spk)
        return out

    return make


def tiny_base(out: Path, speakers: int, test_speakers: int, utts: int, overrides: list[str]) -> dict:
    """A synthetic corpus in `out` (train/ and test/ with features, units.txt) and a tiny model trained on it in
    out/base (overrides on top of model.size=tiny, one epoch); returns train()'s result."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data_prep"))
    import synth

    from speechmeta.config import load_config
    from speechmeta.data.compute_feats import compute_feats
    from speechmeta.data.datadir import DataDir
    from speechmeta.data.tokenizer import CharTokenizer
    from speechmeta.train import train

    synth.prepare(out, num_speakers=speakers, num_test=test_speakers, utts_per_spk=utts, dev_utts=0, seed=0, nj=2,
                  progress=False)
    for split in ("train", "test"):
        compute_feats(out / split, progress=False)
    CharTokenizer.build(DataDir.load(out / "train").text.values()).save(out / "units.txt")
    cfg = load_config(overrides=["model.size=tiny", "train.epochs=1", "train.average_last=1", *overrides])
    return train(cfg, out / "train", out / "train", out / "units.txt", out / "base", progress=False)


def cli(*args) -> list[str]:
    """The argv of `speechmeta ARGS...` with this interpreter, so the code under test runs."""
    return [sys.executable, "-m", "speechmeta.cli", *map(str, args)]


def torchrun_meta_train(base: Path, exp: Path, procs: int, overrides: list[str]) -> subprocess.CompletedProcess:
    """`torchrun --nproc-per-node procs ... meta-train` of `base` (a tiny_base folder) into `exp`, on a free port."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(procs), "--master-addr",
           "127.0.0.1", "--master-port", str(port), "-m", "speechmeta.cli", "meta-train", "--base",
           str(base / "base" / "average.pt"), "--train-dir", str(base / "train"), "--valid-dir", str(base / "test"),
           "--exp-dir", str(exp), "--no-progress", *overrides]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


def kill_when(cmd: list[str], ready: Callable[[], bool], delay: float, env: dict | None = None,
              timeout: float = 600) -> bool:
    """Run `cmd` in a process group of its own; once `ready()` holds, wait `delay` seconds more, then SIGKILL the
    whole group (as a power cut or the OOM killer would: no handler runs). True if it was killed, False if it had
    finished by then."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env=env)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and not ready() and time.monotonic() < deadline:
        time.sleep(0.005)
    end = time.monotonic() + delay
    while proc.poll() is None and time.monotonic() < end:
        time.sleep(0.005)
    if proc.poll() is not None:
        return False
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


VOLATILE = ("runs", "log")  # run records and logs: a rerun writes its own


def _same_content(a: Path, b: Path) -> bool:
    """Equal files; zip containers by content (torch.save and np.savez stamp times), metrics.csv without the
    wall-clock `seconds` column."""
    if a.read_bytes() == b.read_bytes():
        return True
    if a.suffix == ".pt":
        import torch

        def same(x, y) -> bool:
            if isinstance(x, torch.Tensor):
                return isinstance(y, torch.Tensor) and x.dtype == y.dtype and torch.equal(x, y)
            if isinstance(x, dict):
                return isinstance(y, dict) and x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
            if isinstance(x, (list, tuple)):
                return type(x) is type(y) and len(x) == len(y) and all(map(same, x, y))
            return x == y

        try:
            return same(torch.load(a, weights_only=True), torch.load(b, weights_only=True))
        except Exception:
            return False
    if a.suffix == ".npz":
        import numpy as np

        try:
            with np.load(a) as x, np.load(b) as y:
                return x.files == y.files and all(np.array_equal(x[k], y[k]) for k in x.files)
        except Exception:
            return False
    if a.name == "metrics.csv":
        def rows(p: Path) -> list[list[str]]:
            import csv

            table = list(csv.reader(p.read_text().splitlines()))
            drop = table[0].index("seconds") if table and "seconds" in table[0] else None
            return [[v for i, v in enumerate(r) if i != drop] for r in table]

        return rows(a) == rows(b)
    return False


def output_files(root: Path) -> dict[str, Path]:
    """Relative path -> file or link under `root`, without run records and logs."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in VOLATILE and not (Path(dirpath) / d).is_symlink()]
        links = [d for d in os.listdir(dirpath) if (Path(dirpath) / d).is_symlink()]
        for name in set(filenames) | set(links):
            if not name.endswith(".log"):
                out[str((Path(dirpath) / name).relative_to(root))] = Path(dirpath) / name
    return out


def output_differences(ref: Path, new: Path) -> list[tuple[str, int, str]]:
    """The finished outputs under `ref` that are missing or different under `new`: (relative path, bytes, why).
    Run records, logs and the wall-clock column of metrics.csv are not compared."""
    have = output_files(new)
    out = []
    for rel, a in sorted(output_files(ref).items()):
        b = have.get(rel)
        if a.is_symlink():
            if b is None or not b.is_symlink() or os.readlink(a) != os.readlink(b):
                out.append((rel, 0, "link missing or different"))
        elif b is None:
            out.append((rel, a.stat().st_size, "missing"))
        elif not _same_content(a, b):
            out.append((rel, a.stat().st_size, "different"))
    return out


def partial_files(ref: Path, killed: Path) -> list[str]:
    """Files a killed run left under a final name that are not finished: different from the finished run's file
    of that name, or, for a checkpoint the finished run no longer has, not loadable. Temporary files
    (`.NAME.XXXX.tmp`) and append-only metrics are not final names."""
    from speechmeta.checkpoint import CheckpointError, load_checkpoint

    done = output_files(ref)
    bad = []
    for rel, path in sorted(output_files(killed).items()):
        if path.is_symlink() or path.name.endswith(".tmp") or path.name == "metrics.csv":
            continue
        if rel in done:
            if not _same_content(done[rel], path):
                bad.append(rel)
        elif path.suffix == ".pt":
            try:
                load_checkpoint(path)
            except CheckpointError:
                bad.append(rel)
    return bad
