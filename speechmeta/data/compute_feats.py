"""`compute-feats`: log-mel features, `utt2num_frames` and CMVN statistics for a data dir.

Utterances (sorted) are cut into chunks; each chunk is one `.npy` file written atomically, then a small JSON index
that marks it finished. An interrupted run therefore resumes at the first unfinished chunk, and a changed feature
config or utterance list discards the old chunks and restarts cleanly. Up to `nj` worker processes share the chunks
(Kaldi's `--nj`) once the chunks timed so far say they would save more time than they take to start. Bad audio stops
the run with an error naming the utterance, or with `skip_bad` is listed in `bad_utts.txt`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from speechmeta.data.audio import AudioError, load_audio
from speechmeta.data.cmvn import accumulate, save_cmvn
from speechmeta.data.datadir import DataDir
from speechmeta.data.fbank import FbankConfig, fbank
from speechmeta.fileio import atomic_open, atomic_write_lines, atomic_write_text

log = logging.getLogger(__name__)
STORE = "fbank"  # feature files live in <data dir>/fbank/
DEFAULT_FBANK = FbankConfig()
# Seconds a job's process takes to start (it imports torch; measured on a 2-core VM, 2026-12-08: --nj 2 on 56
# utterances took 6.7 s against 3.4 s in one process). Jobs start only when the chunks this process has timed say
# they would save more than that: a few short recordings, or FSDD's 3000 digits (8.1 s in one process against
# 9.1 s with two jobs), are done sooner without them.
JOB_START_SECONDS = 3.5


@dataclass
class FeatsSummary:
    utts: int  # utterances with features
    frames: int
    bad: list[tuple[str, str, str]]  # (utt, path, reason) skipped with skip_bad
    chunks: int
    chunks_reused: int  # finished by an earlier, interrupted run
    seconds: float
    jobs: int = 1  # processes that computed them: 1, or up to nj when jobs paid for their start


Ref = tuple[str, str, float, float | None]  # utt, audio path, start, end


def _compute_chunk(index: int, refs: list[Ref], cfg: FbankConfig, store: str, skip_bad: bool) -> int:
    """Features of one chunk of utterances into `raw_fbank.<index>.npy` + its JSON index; returns utterances done."""
    feats, rows, bad, offset = [], [], [], 0
    for utt, path, start, end in refs:
        try:
            samples = load_audio(path, cfg.sample_rate, utt=utt, start=start, end=end)
            utt_feats = fbank(samples, cfg)
            if utt_feats.shape[0] == 0:
                raise AudioError(utt, path, f"too short: {1000 * len(samples) / cfg.sample_rate:.0f} ms, "
                                            f"less than one {cfg.frame_length_ms:g} ms window")
        except AudioError as e:
            if not skip_bad:
                raise
            bad.append((utt, path, e.reason))
            continue
        feats.append(utt_feats)
        rows.append((utt, offset, utt_feats.shape[0]))
        offset += utt_feats.shape[0]
    array = np.concatenate(feats) if feats else np.zeros((0, cfg.num_mel_bins), dtype=np.float32)
    with atomic_open(Path(store) / f"raw_fbank.{index}.npy", "wb") as f:
        np.save(f, array)
    atomic_write_text(Path(store) / f"raw_fbank.{index}.json", json.dumps({"utts": rows, "bad": bad}))
    return len(refs)


def _jobs_pay(chunk_seconds: float, chunks_left: int, nj: int) -> bool:
    """Whether up to `nj` job processes would finish `chunks_left` chunks of `chunk_seconds` each sooner than this
    process alone, counting their start."""
    jobs = min(nj, chunks_left)
    alone = chunk_seconds * chunks_left
    return jobs > 1 and alone - alone / jobs > JOB_START_SECONDS


def _one_thread() -> None:
    """A job's process runs one torch thread: one process per core, parallelism comes from nj."""
    import torch

    torch.set_num_threads(1)


def _signature(cfg: FbankConfig, refs: list[Ref], chunk_utts: int) -> dict:
    digest = hashlib.sha256("\n".join(map(repr, refs)).encode()).hexdigest()
    return {"fbank": dataclasses.asdict(cfg), "chunk_utts": chunk_utts, "utts_sha256": digest}


def _prepare_store(store: Path, signature: dict) -> None:
    """Keep finished chunks of a run with the same signature; otherwise start from an empty store."""
    conf = store / "conf.json"
    same = conf.exists() and json.loads(conf.read_text()) == signature
    if store.exists():
        stale = [p for p in store.iterdir()
                 if p.name.endswith(".tmp") or (not same and p.name.startswith("raw_fbank."))]
        if stale and not same:
            log.info("%s: feature config or utterance list changed, discarding %d old files", store, len(stale))
        for p in stale:
            p.unlink()
    store.mkdir(parents=True, exist_ok=True)
    if not same:
        atomic_write_text(conf, json.dumps(signature, indent=1))


def compute_feats(data_dir: str | os.PathLike, cfg: FbankConfig = DEFAULT_FBANK, nj: int = 1, skip_bad: bool = False,
                  audio_root: str | os.PathLike | None = None, progress: bool = True) -> FeatsSummary:
    """Compute features for every utterance of `data_dir`; write feats.scp, utt2num_frames, cmvn.npz."""
    began = time.time()
    data_dir = Path(data_dir)
    data = DataDir.load(data_dir, audio_root, need_text=False)  # features need no transcripts
    refs: list[Ref] = []
    for utt in data.utts:
        audio = data.audio(utt)
        refs.append((utt, str(audio.path), audio.start, audio.end))
    chunk_utts = max(8, min(256, math.ceil(len(refs) / (8 * nj))))
    chunks = [refs[i:i + chunk_utts] for i in range(0, len(refs), chunk_utts)]
    store = data_dir / STORE
    _prepare_store(store, _signature(cfg, refs, chunk_utts))

    done = {i for i in range(len(chunks)) if (store / f"raw_fbank.{i}.json").exists()}
    todo = [i for i in range(len(chunks)) if i not in done]
    bar = tqdm(total=len(refs), initial=sum(len(chunks[i]) for i in done), unit="utt", desc="compute-feats",
               disable=not progress)
    jobs = 1
    with bar:
        while todo:  # here, a chunk at a time, until the time of the last says jobs would finish the rest sooner
            i = todo.pop(0)
            began_chunk = time.perf_counter()
            bar.update(_compute_chunk(i, chunks[i], cfg, str(store), skip_bad))
            if _jobs_pay(time.perf_counter() - began_chunk, len(todo), nj):
                jobs = min(nj, len(todo))
                break
        if todo:
            ctx = multiprocessing.get_context("spawn")  # fork after torch has started threads can deadlock
            with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_one_thread) as pool:
                futures = [pool.submit(_compute_chunk, i, chunks[i], cfg, str(store), skip_bad) for i in todo]
                try:
                    for future in as_completed(futures):
                        bar.update(future.result())
                except BaseException:
                    for future in futures:
                        future.cancel()
                    raise
    return dataclasses.replace(_finish(data_dir, data, len(chunks), len(done), began), jobs=jobs)


def _finish(data_dir: Path, data: DataDir, num_chunks: int, reused: int, began: float) -> FeatsSummary:
    """Merge the chunk indexes into feats.scp and utt2num_frames, list bad utterances, accumulate CMVN stats."""
    scp, num_frames, bad = [], [], []
    global_stats, spk_stats = None, {}
    for i in range(num_chunks):
        meta = json.loads((data_dir / STORE / f"raw_fbank.{i}.json").read_text())
        array = np.load(data_dir / STORE / f"raw_fbank.{i}.npy", mmap_mode="r")
        for utt, start, num in meta["utts"]:
            scp.append(f"{utt} {STORE}/raw_fbank.{i}.npy:{start}:{num}")
            num_frames.append(f"{utt} {num}")
            feats = array[start:start + num]
            global_stats = accumulate(global_stats, feats)
            spk = data.utt2spk[utt]
            spk_stats[spk] = accumulate(spk_stats.get(spk), feats)
        bad += [tuple(b) for b in meta["bad"]]
    if global_stats is None:
        raise ValueError(f"{data_dir}: no utterance gave features ({len(bad)} bad); see {data_dir / 'bad_utts.txt'}")
    atomic_write_lines(data_dir / "feats.scp", scp)
    atomic_write_lines(data_dir / "utt2num_frames", num_frames)
    save_cmvn(data_dir / "cmvn.npz", global_stats, spk_stats)
    bad_file = data_dir / "bad_utts.txt"
    if bad:
        atomic_write_lines(bad_file, [f"{utt}\t{path}\t{reason}" for utt, path, reason in bad])
        for utt, path, reason in bad:
            log.warning("skipped utterance '%s': %s: %s", utt, path, reason)
    elif bad_file.exists():
        bad_file.unlink()
    return FeatsSummary(len(scp), int(global_stats[0, -1]), bad, num_chunks, reused, time.time() - began)
