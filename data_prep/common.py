"""What every data-prep script reports: speakers, utterances, hours, and frames per character.

Frames per character counts the encoder's output frames (10 ms shift, x4 subsampling) per transcript character:
CTC needs at least one frame per character (two between repeated characters), and a synthetic corpus should speak
at a rate close to the real speech it stands in for. Data prep does not know the model's frame shift, so the figure
is for 10 ms frames (the default) and says so; a model with 5 ms frames (the FSDD recipe) has twice as many.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from speechmeta.data.datadir import DataDir

SUBSAMPLING = 4
FRAME_SHIFT_S = 0.01


def corpus_stats(data_dir: str | os.PathLike, audio_root: str | os.PathLike | None = None) -> dict:
    """Statistics of a data dir, reading only audio headers (an untranscribed one: no frames per character)."""
    data = DataDir.load(data_dir, audio_root, need_text=False)
    seconds, per_char = [], []
    for utt in data.utts:
        ref = data.audio(utt)
        info = sf.info(str(ref.path))
        duration = (ref.end if ref.end is not None else info.duration) - ref.start
        seconds.append(duration)
        if data.text:
            per_char.append(duration / FRAME_SHIFT_S / SUBSAMPLING / max(len(data.text[utt]), 1))
    per_char_arr = np.array(per_char)
    rates = {
        "frames_per_char_mean": round(float(per_char_arr.mean()), 2),
        "frames_per_char_p5": round(float(np.percentile(per_char_arr, 5)), 2),
        "utts_below_1_frame_per_char": int((per_char_arr < 1).sum()),
    } if per_char else {}
    return {
        "dir": str(data_dir), "speakers": len(data.spk2utt), "utterances": len(data.utts),
        "hours": round(sum(seconds) / 3600, 3),
        "utts_per_speaker": [min(len(u) for u in data.spk2utt.values()), max(len(u) for u in data.spk2utt.values())],
        **rates,
    }


def format_stats(stats: dict) -> str:
    head = (f"{stats['dir']}: {stats['speakers']} speakers, {stats['utterances']} utterances, {stats['hours']:.3f} h, "
            f"{stats['utts_per_speaker'][0]}-{stats['utts_per_speaker'][1]} utts/speaker, ")
    if "frames_per_char_mean" not in stats:
        return head + "no transcripts"
    return head + (f"{stats['frames_per_char_mean']:.2f} output frames/char (10 ms frames, x{SUBSAMPLING} subsampling; "
                   f"5th percentile {stats['frames_per_char_p5']:.2f}, {stats['utts_below_1_frame_per_char']} utts "
                   "below 1)")


def print_stats(data_dir: Path, audio_root: Path | None = None) -> dict:
    stats = corpus_stats(data_dir, audio_root)
    print(format_stats(stats))
    return stats


def report(data_dir: Path, skipped: list[tuple[str, str]]) -> dict:
    """Print every skipped utterance with its reason (stderr), then the statistics of the data dir written."""
    for utt, reason in skipped:
        print(f"skipped {utt}: {reason}", file=sys.stderr)
    stats = print_stats(data_dir)
    print(f"{data_dir}: {len(skipped)} utterance(s) skipped")
    return stats
