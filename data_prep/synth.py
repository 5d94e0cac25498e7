#!/usr/bin/env python3
"""The embedded default corpus: multi-speaker English speech synthesized offline with eSpeak NG.

A speaker is a fixed accent voice + variant + pitch + pitch range + speaking rate + channel (spectral colouring,
gain, band limit, light noise). Held-out speakers use accents (or variants) that no training speaker has
(`--unseen`), so a model trained on the others meets something new. Sentences come from `sentences.py` (every
speaker reads different ones) or, with `--text`, from a file such as a real corpus's training transcripts.

Writes 16 kHz WAVs under OUT/wav/<spk>/ and Kaldi data dirs OUT/train (training speakers), OUT/dev (the training
speakers reading new sentences) and OUT/test (held-out speakers). The same arguments give byte-identical output:
libespeak-ng carries state between utterances, so each speaker is synthesized in a fresh process from its own seed.

    python data_prep/synth.py --out data/synth --speakers 60 --test-speakers 12 --utts-per-speaker 50 --seed 0
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import random
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_stats  # noqa: E402
from sentences import sentences  # noqa: E402

from speechmeta.data.datadir import write_data_dir  # noqa: E402
from speechmeta.data.tokenizer import TextNorm  # noqa: E402
from speechmeta.fileio import atomic_open, atomic_write_text  # noqa: E402

SAMPLE_RATE = 16000
ACCENTS = ["en-us", "en-gb-x-rp", "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en", "en-gb-scotland", "en-029"]
HELD_OUT_ACCENTS = ["en-gb-scotland", "en-029"]  # with --unseen accent: only held-out speakers have these
MALE = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"]
FEMALE = ["f1", "f2", "f3", "f4", "f5"]
KLATT = ["klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6"]
HELD_OUT_VARIANTS = ["m7", "f4", "klatt4"]  # with --unseen variant
RATE_WPM = (80, 120)  # eSpeak words/minute (80 is eSpeak's minimum); with the word gaps and the leading and
# trailing silence below, frames per character come close to speechocean762's read speech (as the data prep
# prints them: 3.44 output frames per character for 70 voices reading its training transcripts, 3.72 for the speakers)
SILENCE_S = (0.15, 0.5)  # silence before and after each utterance, as in real recordings


@dataclass(frozen=True)
class Speaker:
    spk: str
    split: str  # "train" or "test"
    accent: str
    variant: str
    pitch: int  # eSpeak 0-99
    pitch_range: int  # eSpeak 0-99
    rate: int  # words per minute
    word_gap: int  # extra pause between words, 10 ms units
    gain_db: float
    tilt_db_per_octave: float
    bump_hz: float  # centre of a resonance / notch in the channel
    bump_db: float
    lowpass_hz: float  # band limit of the channel
    snr_db: float

    @property
    def voice(self) -> str:
        return f"{self.accent}+{self.variant}"

    def describe(self) -> str:
        return " ".join(f"{f.name}={getattr(self, f.name)}" for f in dataclasses.fields(self)
                        if f.name not in ("spk", "split"))


def make_speakers(num: int, num_test: int, unseen: str, seed: int) -> list[Speaker]:
    """`num` speakers, the last `num_test` held out; `unseen` in none/accent/variant/both."""
    if not 0 <= num_test < num:
        raise ValueError(f"need 0 <= test speakers < speakers, got {num_test} of {num}")
    rng = random.Random(seed)
    speakers = []
    for i in range(num):
        split = "test" if i >= num - num_test else "train"
        accents, variants = ACCENTS, MALE + FEMALE + KLATT
        if unseen in ("accent", "both"):
            accents = HELD_OUT_ACCENTS if split == "test" else [a for a in ACCENTS if a not in HELD_OUT_ACCENTS]
        if unseen in ("variant", "both"):
            variants = HELD_OUT_VARIANTS if split == "test" else [v for v in variants if v not in HELD_OUT_VARIANTS]
        variant = rng.choice(variants)
        low_pitch = variant in MALE or variant in ("klatt", "klatt2", "klatt4")
        speakers.append(Speaker(
            spk=f"spk{i + 1:03d}", split=split, accent=rng.choice(accents), variant=variant,
            pitch=rng.randint(20, 55) if low_pitch else rng.randint(45, 85), pitch_range=rng.randint(20, 80),
            rate=rng.randint(*RATE_WPM), word_gap=rng.choice([0, 1, 2, 3, 5]),
            gain_db=round(rng.uniform(-8, 0), 1), tilt_db_per_octave=round(rng.uniform(-4, 3), 1),
            bump_hz=round(rng.uniform(300, 3500)), bump_db=round(rng.uniform(-9, 9), 1),
            lowpass_hz=rng.choice([8000, 8000, 7000, 5500, 4000]), snr_db=round(rng.uniform(22, 45), 1),
        ))
    return speakers


def channel(samples: np.ndarray, spk: Speaker, rng: np.random.Generator) -> np.ndarray:
    """The speaker's channel: linear-phase FIR colouring (tilt, bump, band limit), gain, white noise at snr_db."""
    freqs = np.linspace(0, SAMPLE_RATE / 2, 257)
    octaves = np.log2(np.maximum(freqs, 50.0) / 1000.0)
    gain_db = spk.tilt_db_per_octave * octaves
    gain_db += spk.bump_db * np.exp(-0.5 * (np.log2(np.maximum(freqs, 50.0) / spk.bump_hz) / 0.4) ** 2)
    gain_db -= 60.0 / (1.0 + np.exp(-(freqs - spk.lowpass_hz) / 150.0))  # smooth band limit
    taps = np.roll(np.fft.irfft(10 ** (gain_db / 20)), 256) * np.hanning(512)
    coloured = np.convolve(samples, taps, mode="same")
    coloured *= 10 ** (spk.gain_db / 20) * 0.5 / max(np.abs(coloured).max(), 1e-6)
    noise_rms = np.sqrt(np.mean(coloured ** 2)) * 10 ** (-spk.snr_db / 20)
    return np.clip(coloured + noise_rms * rng.standard_normal(len(coloured)), -1.0, 1.0).astype(np.float32)


def synth_speaker(spk: Speaker, items: list[tuple[str, str]], wav_dir: str, seed: int) -> list[tuple[str, int]]:
    """Synthesize (utt, text) items for one speaker in this (fresh) process; returns (utt, num_samples)."""
    from espeak import ESpeak

    engine = ESpeak(seed=seed * 100_003 + int(spk.spk[3:]))
    out_dir = Path(wav_dir) / spk.spk
    out_dir.mkdir(parents=True, exist_ok=True)
    done = []
    for number, (utt, text) in enumerate(items):
        jitter = random.Random(f"{seed}/{utt}")
        raw = engine.synth(text, spk.voice, rate=round(spk.rate * jitter.uniform(0.93, 1.07)),
                           pitch=min(99, max(0, spk.pitch + jitter.randint(-3, 3))), pitch_range=spk.pitch_range,
                           word_gap=spk.word_gap)
        audio = soxr.resample(raw.astype(np.float32) / 32768.0, engine.sample_rate, SAMPLE_RATE, quality="HQ")
        pad = [np.zeros(int(jitter.uniform(*SILENCE_S) * SAMPLE_RATE), np.float32) for _ in range(2)]
        audio = np.concatenate([pad[0], audio, pad[1]])
        audio = channel(audio, spk, np.random.default_rng([seed, int(spk.spk[3:]), number]))
        with atomic_open(out_dir / f"{utt}.wav", "wb") as f:  # a killed run leaves no half-written wav
            sf.write(f, audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")
        done.append((utt, len(audio)))
    atomic_write_text(out_dir / ".done", f"{len(done)}\n")
    return done


def assign_sentences(speakers: list[Speaker], per_spk: int, seed: int, text_file: Path | None,
                     has_ids: bool) -> dict[str, list[str]]:
    """spk -> the sentences it reads: generated (all different), or from `text_file` in shuffled round robin (a
    speaker repeats sentences only when the file has fewer different ones than it reads, e.g. FSDD's 10 digits;
    each reading differs in rate and pitch)."""
    if text_file is None:
        seen: set[str] = set()
        return {s.spk: sentences(per_spk, seed=seed * 7919 + i, exclude=seen) for i, s in enumerate(speakers)}
    lines = text_file.read_text(encoding="utf-8").splitlines()
    if has_ids:
        lines = [line.split(maxsplit=1)[1] if len(line.split()) > 1 else "" for line in lines]
    pool = sorted({TextNorm()(line) for line in lines} - {""})
    if not pool:
        raise ValueError(f"{text_file}: no sentences")
    random.Random(seed).shuffle(pool)
    if per_spk > len(pool):
        print(f"{text_file}: {len(pool)} different sentences, fewer than the {per_spk} per speaker: each speaker "
              "repeats them", file=sys.stderr)
    return {s.spk: [pool[(i * per_spk + j) % len(pool)].lower() for j in range(per_spk)]
            for i, s in enumerate(speakers)}


def prepare(out: Path, num_speakers: int = 60, num_test: int = 12, utts_per_spk: int = 50, dev_utts: int = 5,
            seed: int = 0, unseen: str = "accent", text_file: Path | None = None, text_has_ids: bool = False,
            nj: int = 2, progress: bool = True, bandwidth_hz: int = 0) -> dict[str, Path]:
    """Generate the corpus into `out`; returns split name -> data dir. Finished speakers of a run with the same
    arguments are kept (resume); different arguments start over. `bandwidth_hz` > 0 band-limits every channel to
    it (to match a target corpus recorded at a lower sampling rate, e.g. 3800 for 8 kHz telephone-band audio)."""
    began = time.time()
    speakers = make_speakers(num_speakers, num_test, unseen, seed)
    if bandwidth_hz > 0:
        speakers = [dataclasses.replace(s, lowpass_hz=min(s.lowpass_hz, bandwidth_hz)) for s in speakers]
    texts = assign_sentences(speakers, utts_per_spk + dev_utts, seed, text_file, text_has_ids)
    conf = json.dumps({"speakers": num_speakers, "test": num_test, "utts": utts_per_spk, "dev": dev_utts,
                       "seed": seed, "unseen": unseen, "text": texts,
                       **({"bandwidth_hz": bandwidth_hz} if bandwidth_hz > 0 else {})}, sort_keys=True)
    wav_dir = out / "wav"
    if (out / "synth_conf.json").exists() and (out / "synth_conf.json").read_text() != conf:
        print(f"{out}: arguments changed, regenerating", file=sys.stderr)
        shutil.rmtree(wav_dir, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "synth_conf.json", conf)

    items = {s.spk: [(f"{s.spk}-{j + 1:04d}", t) for j, t in enumerate(texts[s.spk])] for s in speakers}
    todo = [s for s in speakers if not (wav_dir / s.spk / ".done").exists()]
    bar = tqdm(total=len(speakers), initial=len(speakers) - len(todo), unit="spk", desc="synth", disable=not progress)
    ctx = multiprocessing.get_context("spawn")
    with bar, ProcessPoolExecutor(max(1, nj), mp_context=ctx, max_tasks_per_child=1) as pool:
        futures = [pool.submit(synth_speaker, s, items[s.spk], str(wav_dir), seed) for s in todo]
        for future in futures:
            future.result()
            bar.update(1)

    splits = {"train": [s for s in speakers if s.split == "train"], "test": [s for s in speakers if s.split == "test"]}
    dirs = {}
    for name, members, lo, hi in [("train", splits["train"], 0, utts_per_spk),
                                  ("dev", splits["train"], utts_per_spk, utts_per_spk + dev_utts),
                                  ("test", splits["test"], 0, utts_per_spk)]:
        chosen = [(s, utt, text) for s in members for utt, text in items[s.spk][lo:hi]]
        if not chosen:
            continue
        write_data_dir(
            out / name,
            wav={utt: f"../wav/{s.spk}/{utt}.wav" for s, utt, _ in chosen},
            text={utt: TextNorm()(text) for _, utt, text in chosen},
            utt2spk={utt: s.spk for s, utt, _ in chosen},
            extra={"spk2voice": {s.spk: s.describe() for s in members}},
        )
        dirs[name] = out / name
    print(f"{out}: generated in {time.time() - began:.1f} s ({len(todo)} of {len(speakers)} speakers synthesized now)")
    return dirs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="output folder (wav/, train/, dev/, test/)")
    p.add_argument("--speakers", type=int, default=60, help="number of speakers, held-out ones included")
    p.add_argument("--test-speakers", type=int, default=12, help="held-out speakers (0: none)")
    p.add_argument("--utts-per-speaker", type=int, default=50)
    p.add_argument("--dev-utts-per-speaker", type=int, default=5, help="new sentences of training speakers (dev/)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--unseen", choices=["none", "accent", "variant", "both"], default="accent",
                   help="what held-out speakers have that no training speaker has (default: accent)")
    p.add_argument("--text", type=Path, help="read these sentences (one per line) instead of generated ones")
    p.add_argument("--text-has-ids", action="store_true", help="--text lines start with an utterance id (Kaldi text)")
    p.add_argument("--bandwidth", type=int, default=0, metavar="HZ",
                   help="band-limit every voice's channel to HZ (e.g. 3800 to match 8 kHz recordings; 0: off)")
    p.add_argument("--nj", type=int, default=2, help="parallel processes (one speaker each at a time)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    dirs = prepare(args.out, args.speakers, args.test_speakers, args.utts_per_speaker, args.dev_utts_per_speaker,
                   args.seed, args.unseen, args.text, args.text_has_ids, args.nj, not args.no_progress,
                   args.bandwidth)
    for d in dirs.values():
        print_stats(d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
