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

BLOCK = 1 << 18  # frames read at a time


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
    samples = _read_mono(path, utt, first, last, info.samplerate, sample_rate)
    if samples.shape[0] == 0:
        raise AudioError(utt, path, "no samples")
    return samples


def _read_mono(path: Path, utt: str | None, first: int, last: int, rate: int, sample_rate: int) -> np.ndarray:
    """Samples first..last of `path`, mixed to mono and resampled, read BLOCK frames at a time: a long or
    multi-channel recording never sits in memory at its own rate and channel count (soxr's stream gives exactly
    its one-shot result)."""
    stream = soxr.ResampleStream(rate, sample_rate, 1, dtype="float32", quality="HQ") if rate != sample_rate else None
    pieces, have = [], 0
    try:
        with sf.SoundFile(str(path)) as f:
            f.seek(first)
            while have < last - first:
                data = f.read(min(BLOCK, last - first - have), dtype="float32", always_2d=True)
                if data.shape[0] == 0:
                    break
                if not np.isfinite(data).all():
                    raise AudioError(utt, path, "contains NaN or infinite samples")
                have += data.shape[0]
                mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
                pieces.append(stream.resample_chunk(mono, last=False) if stream else mono)
    except AudioError:
        raise
    except Exception as e:
        raise AudioError(utt, path, f"decoding failed, file damaged or truncated ({e})") from e
    if have == 0:
        raise AudioError(utt, path, "no samples")
    if have < last - first:
        raise AudioError(utt, path, f"truncated: {have} of {last - first} samples readable")
    if stream is not None:
        pieces.append(stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
    return np.ascontiguousarray(np.concatenate(pieces), dtype=np.float32)
