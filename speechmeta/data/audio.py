"""Audio loading with soundfile: mono mix-down, resampling, and errors that name the utterance and the file.

soundfile (libsndfile) reads WAV, FLAC, OGG and more without FFmpeg; soxr resamples (a fast, high-quality C
resampler that librosa already depends on).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr


class AudioError(ValueError):
    """Audio that cannot be used, with the utterance and file it belongs to."""

    def __init__(self, utt: str | None, path: str | Path, reason: str):
        self.utt, self.path, self.reason = utt, str(path), reason
        who = f"utterance '{utt}': " if utt else ""
        super().__init__(f"{who}{path}: {reason}")

    def __reduce__(self):  # so the error survives the trip back from a worker process
        return AudioError, (self.utt, self.path, self.reason)


def _wav_truncation(path: Path) -> str | None:
    """For a RIFF/WAVE file, why its data chunk is shorter than its header says (libsndfile silently clips it)."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        size = path.stat().st_size
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            cid, clen = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"data":
                have = size - f.tell()
                if clen != 0xFFFFFFFF and have < clen:
                    return f"truncated WAV: header declares {clen} data bytes, file holds {have}"
                return None
            f.seek(clen + (clen & 1), 1)


def load_audio(path: str | Path, sample_rate: int = 16000, *, utt: str | None = None,
               start: float = 0.0, end: float | None = None) -> np.ndarray:
    """Samples of `path` (seconds `start`..`end`) as float32 mono in [-1, 1] at `sample_rate`.

    Raises AudioError naming `utt` and `path` for a missing, empty, unreadable, truncated or non-finite file.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(utt, path, "file not found")
    if path.stat().st_size == 0:
        raise AudioError(utt, path, "empty file (0 bytes)")
    try:
        info = sf.info(str(path))
    except Exception as e:  # libsndfile reports every unreadable format through its own error type
        raise AudioError(utt, path, f"not readable audio ({e})") from e
    truncated = _wav_truncation(path)
    if truncated:
        raise AudioError(utt, path, truncated)
    first = int(round(start * info.samplerate))
    last = info.frames if end is None else int(round(end * info.samplerate))
    if last > info.frames + info.samplerate // 100:  # allow 10 ms of rounding in segment times
        raise AudioError(utt, path, f"segment ends at {end:.2f} s, after the end of the file ({info.duration:.2f} s)")
    last = min(last, info.frames)
    try:
        data, sr = sf.read(str(path), start=first, stop=last, dtype="float32", always_2d=True)
    except Exception as e:
        raise AudioError(utt, path, f"decoding failed, file damaged or truncated ({e})") from e
    if data.shape[0] == 0:
        raise AudioError(utt, path, "no samples")
    if data.shape[0] < last - first:
        raise AudioError(utt, path, f"truncated: {data.shape[0]} of {last - first} samples readable")
    if not np.isfinite(data).all():
        raise AudioError(utt, path, "contains NaN or infinite samples")
    samples = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if sr != sample_rate:
        samples = soxr.resample(samples, sr, sample_rate, quality="HQ").astype(np.float32, copy=False)
    return np.ascontiguousarray(samples, dtype=np.float32)
