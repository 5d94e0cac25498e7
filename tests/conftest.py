"""Shared fixtures: tiny data dirs with generated audio, and the path to the real corpora in ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechmeta.data.datadir import write_data_dir

SHARED_DATA = Path(os.environ.get("SPEECHMETA_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


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


def write_wav(path: Path, samples: np.ndarray, sample_rate: int = 16000, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, sample_rate, subtype=subtype)
    return path


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
