#!/usr/bin/env python3
"""Feature extraction speed: x-real-time of load + resample + log-mel fbank on 60 s of audio, on one core.

Prints JSON. Measured in the same run, on the same files and the same single thread: librosa (load with resampling
+ melspectrogram + log, the same 25 ms / 10 ms / 80-bin setup) and torchaudio's Kaldi fbank on the loaded samples.
Goal (issue 2): speechmeta >= 1000x real time on one core. Usage: python benchmarks/features.py [--repeats N]
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[var] = "1"  # one core, for every library in the comparison

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
import torchaudio.compliance.kaldi as kaldi  # noqa: E402

from speechmeta.data.audio import load_audio  # noqa: E402
from speechmeta.data.fbank import fbank  # noqa: E402

SECONDS = 60.0


def speechlike(seconds: float, rate: int) -> np.ndarray:
    """Harmonic bursts with a moving pitch and noise: not silence, not a pure tone."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = (np.sin(2 * np.pi * 3 * t) > -0.3).astype(float)
    return (0.1 * voiced * envelope + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)


def median_seconds(fns: dict, repeats: int) -> dict[str, float]:
    """Median wall time of each function, timed in interleaved rounds so that machine noise hits all alike."""
    for fn in fns.values():
        fn()  # warm-up: caches, librosa's numba compilation
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=21)
    args = p.parse_args()
    torch.set_num_threads(1)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rate in (8000, 16000):
            path = Path(tmp) / f"a{rate}.wav"
            sf.write(str(path), speechlike(SECONDS, rate), rate, subtype="PCM_16")

            def ours(path=path):
                return fbank(load_audio(path, 16000))

            def with_librosa(path=path):
                y, _ = librosa.load(str(path), sr=16000)
                mel = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=512, win_length=400, hop_length=160,
                                                     n_mels=80, fmin=20, center=False)
                return np.log(np.maximum(mel, 1e-10))

            samples = load_audio(path, 16000)

            def torchaudio_fbank(samples=samples):
                return kaldi.fbank(torch.from_numpy(samples)[None] * 32768, num_mel_bins=80, dither=0.0)

            t = median_seconds({"ours": ours, "librosa": with_librosa, "torchaudio": torchaudio_fbank}, args.repeats)
            t_ours, t_librosa, t_ta = t["ours"], t["librosa"], t["torchaudio"]
            results[f"{rate // 1000}k_input"] = {
                "speechmeta_load_resample_fbank_xrt": round(SECONDS / t_ours),
                "librosa_load_resample_melspectrogram_xrt": round(SECONDS / t_librosa),
                "speechmeta_vs_librosa_speed_ratio": round(t_librosa / t_ours, 2),
                "torchaudio_kaldi_fbank_only_xrt": round(SECONDS / t_ta),
            }
    worst = min(r["speechmeta_load_resample_fbank_xrt"] for r in results.values())
    print(json.dumps({
        "benchmark": "features", "audio_seconds": SECONDS, "threads": 1, "repeats": args.repeats,
        "statistic": "median", **results, "goal_xrt": 1000, "meets_goal": worst >= 1000,
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version(), "torch": torch.__version__, "librosa": librosa.__version__},
    }, indent=1))


if __name__ == "__main__":
    main()
