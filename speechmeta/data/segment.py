"""Cutting a long recording into utterance-sized pieces at its pauses, for decoding (`speechmeta transcribe`).

The models are trained on sentences of a few seconds; a minute of speech in one pass is decoded worse (and past
MAX_FRAMES not at all). Frames of 25 ms every 10 ms get their energy in dB; a frame is quiet when it is below the
point `threshold` of the way from the recording's noise floor (10th percentile) to its speech level (90th), or 30 dB
below that level (a floor set by digital silence in part of a recording would leave its room noise loud). A run
of quiet frames at least `min_pause` long is a pause: the recording is cut in its middle. Pieces with no loud frame
are dropped. A piece still longer than `max_seconds` is cut at its longest inner pause of any length, or, with none,
in equal parts. Each piece then keeps its loud frames and `margin` of quiet on either side.
`benchmarks/long_audio.py` (four 48-75 s files of ten synthetic sentences of one voice, pauses of 0.25 or 0.4 s
with noise at -60 dBFS; the demo's base model, beam and LM): WER 0.31 cut with 0.3 s of margin, 0.34 with 0.2 s,
0.39 with 0.1 s, 0.43 with 0.05 s, against 0.49-0.52 in one pass and 0.32 for the sentences transcribed apart.
On real speech (speechocean762: 12 recordings of each of 60 speakers joined, 720 in all) it made 929 pieces,
median 2.62 s, longest 9.6 s; 17 of the 660 joins fell inside a piece (with the floor rule alone: 25). Nothing is
resampled or filtered: the pieces are slices of the samples.
"""

from __future__ import annotations

import numpy as np

WINDOW_S, HOP_S = 0.025, 0.010
SEGMENT_OVER_S = 30.0  # transcribe cuts files longer than this (the models learn from sentences of a few seconds)
SEGMENT_MARGIN_S = 0.3  # quiet kept around each piece's speech: best of those tried for a model of sentences (below);
# a model of tightly cut words wants less (FSDD's digits, 0.4-s pauses: WER 0.33 with 0.05 s, 0.56 with 0.2 s)
QUIET_BELOW_DB = 30.0  # a frame this far below the speech level is quiet whatever the floor: digital silence in
# some stretches (gated recordings) sets the 10th percentile far below the room noise between the words elsewhere
MIN_RANGE_DB = 10.0  # speech level over noise floor below which a recording is taken to have no pauses


def frame_db(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Energy in dB of each 25 ms frame, every 10 ms (frame i starts at sample i * hop)."""
    win, hop = int(WINDOW_S * sample_rate), int(HOP_S * sample_rate)
    if len(samples) < win:
        return np.zeros(0)
    frames = np.lib.stride_tricks.sliding_window_view(samples.astype(np.float64), win)[::hop]
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)


def quiet_runs(quiet: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) frame ranges of consecutive True values."""
    edges = np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def pause_segments(samples: np.ndarray, sample_rate: int, max_seconds: float = 20.0, min_pause: float = 0.3,
                   threshold: float = 0.3, margin: float = SEGMENT_MARGIN_S) -> list[tuple[int, int]]:
    """[start, end) sample ranges of the pieces, in order."""
    if max_seconds <= 0 or min_pause <= 0 or not 0 < threshold < 1 or margin < 0:
        raise ValueError(f"pause segmentation needs max_seconds > 0, min_pause > 0, 0 < threshold < 1 and "
                         f"margin >= 0 (got {max_seconds}, {min_pause}, {threshold}, {margin})")
    db = frame_db(samples, sample_rate)
    if len(db) == 0:
        return [(0, len(samples))]
    floor, level = np.percentile(db, 10), np.percentile(db, 90)
    quiet = db < max(floor + threshold * (level - floor), level - QUIET_BELOW_DB)
    if level - floor < MIN_RANGE_DB:  # steady noise, a tone, silence: no pauses to find
        quiet[:] = False
    hop = int(HOP_S * sample_rate)
    max_frames = max(1, int(max_seconds / HOP_S))
    runs = quiet_runs(quiet)
    cuts = [0] + [(a + b) // 2 for a, b in runs if b - a >= min_pause / HOP_S] + [len(db)]
    pieces: list[tuple[int, int]] = []
    todo = [(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if b > a]
    while todo:
        a, b = todo.pop(0)
        if not (~quiet[a:b]).any():
            continue
        if b - a <= max_frames:
            pieces.append((a, b))
            continue
        inner = [(s, e) for s, e in runs if a < s and e < b]  # pauses strictly inside the piece
        if inner:
            s, e = max(inner, key=lambda r: r[1] - r[0])
            todo[:0] = [(a, (s + e) // 2), ((s + e) // 2, b)]
        else:
            parts = -(-(b - a) // max_frames)
            bounds = [a + (b - a) * i // parts for i in range(parts + 1)]
            todo[:0] = list(zip(bounds, bounds[1:], strict=False))
    out = []
    for a, b in pieces:  # each piece trimmed to its loud frames and `margin` of quiet either side
        loud = np.flatnonzero(~quiet[a:b])
        start, end = max(a, a + loud[0] - int(margin / HOP_S)), min(b, a + loud[-1] + 1 + int(margin / HOP_S))
        out.append((start * hop, len(samples) if end == len(db) else end * hop))  # the last frame's window
    return out  # reaches past its hop: a piece that ends with the recording keeps its tail
