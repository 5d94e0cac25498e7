"""speechmeta.data.segment: long recordings cut at their pauses."""

from __future__ import annotations

import numpy as np
import pytest

from speechmeta.data.segment import SEGMENT_MARGIN_S as MARGIN
from speechmeta.data.segment import pause_segments

SR = 16000


def burst(seconds: float, seed: int) -> np.ndarray:
    """Speech-like: noise whose loudness rises and falls (syllables), never quiet for 0.3 s."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    return 0.3 * rng.standard_normal(len(t)) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))


def noise(seconds: float, seed: int = 99) -> np.ndarray:
    return 0.003 * np.random.default_rng(seed).standard_normal(int(seconds * SR))  # 40 dB below the bursts


def test_cut_at_each_pause_with_a_margin():
    parts, spans = [noise(0.5)], []
    for i, (speech, pause) in enumerate([(2.0, 0.6), (1.5, 0.4), (3.0, 0.8)]):
        start = sum(map(len, parts))
        parts += [burst(speech, i), noise(pause, i)]
        spans.append((start, start + int(speech * SR)))
    x = np.concatenate(parts)
    pieces = pause_segments(x, SR)
    assert len(pieces) == 3
    for (a, b), (s, e) in zip(pieces, spans, strict=True):
        assert a <= s and e <= b  # all of the speech
        assert s - a <= (MARGIN + 0.03) * SR and b - e <= (MARGIN + 0.03) * SR  # and the margin (and a window)
    assert pause_segments(x, SR, margin=0.0)[0][0] >= spans[0][0] - 0.03 * SR


def test_short_pauses_are_not_cut_and_long_pieces_are():
    x = np.concatenate([noise(0.3), burst(4, 1), noise(0.15), burst(4, 2), noise(0.3)])  # a 0.15 s pause inside
    assert len(pause_segments(x, SR)) == 1
    (first, second) = pause_segments(x, SR, max_seconds=6)  # too long: cut at its longest inner pause
    middle = int((0.3 + 4 + 0.075) * SR)
    assert abs(first[1] - middle) <= 0.1 * SR and abs(second[0] - middle) <= 0.1 * SR
    steady = 0.3 * np.random.default_rng(3).standard_normal(25 * SR)  # no pause at all
    pieces = pause_segments(steady, SR, max_seconds=10)
    assert len(pieces) == 3 and pieces[0][0] == 0 and pieces[-1][1] == len(steady)
    assert all(b - a <= 10 * SR for a, b in pieces)
    assert all(b == c for (_, b), (c, _) in zip(pieces, pieces[1:], strict=False))  # equal parts, end to end


def test_silence_and_tiny_inputs():
    assert pause_segments(np.zeros(10 * SR), SR) == [(0, 10 * SR)]  # no loudness range: nothing to cut at
    assert pause_segments(np.zeros(100), SR) == [(0, 100)]  # shorter than one window
    x = np.concatenate([noise(2.0), burst(1.0, 0), noise(2.0)])
    ((a, b),) = pause_segments(x, SR)  # the quiet pieces either side are dropped
    assert (2.0 - MARGIN - 0.05) * SR <= a <= 2.0 * SR and 3.0 * SR <= b <= (3.0 + MARGIN + 0.05) * SR
    with pytest.raises(ValueError, match="max_seconds > 0"):
        pause_segments(x, SR, max_seconds=0)
    with pytest.raises(ValueError, match="0 < threshold < 1"):
        pause_segments(x, SR, threshold=1.5)


def test_digital_silence_in_part_of_a_recording_does_not_hide_the_room_noise_pauses():
    # gated stretches (exact zeros) set the 10th percentile at -100 dB; the room noise of the other pauses, 37 dB
    # below the speech, must still count as quiet
    parts = [np.zeros(SR)]
    for i in range(3):
        parts += [burst(2.0, i), np.zeros(SR // 2)]
    for i in range(3, 6):
        parts += [burst(2.0, i), noise(0.5, i)]
    pieces = pause_segments(np.concatenate(parts), SR)
    assert len(pieces) == 6 and all(b - a <= (2.0 + 2 * MARGIN + 0.1) * SR for a, b in pieces)
