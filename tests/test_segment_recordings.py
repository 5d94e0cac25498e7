"""data_prep/segment_recordings.py: long recordings -> a segments data dir that validates and gets features."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import write_wav
from test_segment import SR, burst, noise

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data_prep"))
import segment_recordings  # noqa: E402

from speechmeta.data.compute_feats import compute_feats  # noqa: E402
from speechmeta.data.datadir import DataDir, validate_data_dir, write_data_dir  # noqa: E402
from speechmeta.data.feats_store import FeatsReader  # noqa: E402
from speechmeta.data.segment import SEGMENT_MARGIN_S as MARGIN  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[1] / "data_prep" / "segment_recordings.py"


def long_recordings(tmp_path: Path) -> Path:
    talk = np.concatenate([noise(0.5), burst(2.0, 0), noise(0.6), burst(1.5, 1), noise(0.6), burst(2.5, 2),
                           noise(0.5)])
    wav = {"anna-talk": str(write_wav(tmp_path / "audio" / "talk.wav", talk, SR)),
           "bob-quiet": str(write_wav(tmp_path / "audio" / "quiet.wav", np.zeros(2 * SR), SR))}
    write_data_dir(tmp_path / "long", wav, {"anna-talk": "a transcript of the whole talk", "bob-quiet": "nothing"},
                   {"anna-talk": "anna", "bob-quiet": "bob"})
    return tmp_path / "long"


def test_pieces_with_segments_and_features(tmp_path):
    stats = segment_recordings.prepare(long_recordings(tmp_path), tmp_path / "seg")
    assert (stats["recordings"], stats["pieces"]) == (1, 3)
    assert stats["skipped"] == [("bob-quiet", "no speech found (silent)")]
    out = tmp_path / "seg"
    assert not (out / "text").exists()
    assert [p for p in validate_data_dir(out, need_text=False) if p.level == "error"] == []
    data = DataDir.load(out, need_text=False)
    starts = [data.audio(u).start for u in data.utts]
    assert data.utts == sorted(data.utts) and starts == sorted(starts) and len(data.utts) == 3
    assert data.utts[0].startswith("anna-talk-") and set(data.utt2spk.values()) == {"anna"}
    first = data.audio(data.utts[0])
    assert first.path == (tmp_path / "audio" / "talk.wav").resolve()
    assert 0.5 - MARGIN - 0.05 <= first.start <= 0.5 and 2.5 <= first.end <= 2.5 + MARGIN + 0.05  # the first burst
    # (0.5-2.5 s) and the margin
    compute_feats(out, progress=False)
    reader = FeatsReader(out)
    assert len(reader) == 3 and all(reader.num_frames(u) > 150 for u in data.utts)


def test_refusals_and_command_line(tmp_path):
    long = long_recordings(tmp_path)
    run = subprocess.run([sys.executable, str(SCRIPT), "--data", str(long), "--out", str(tmp_path / "seg")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "3 pieces of 1 recordings" in run.stdout and "skipped bob-quiet: no speech found" in run.stderr
    with pytest.raises(ValueError, match="already has a segments file"):
        segment_recordings.prepare(tmp_path / "seg", tmp_path / "seg2")
    with pytest.raises(ValueError, match="holds a text file"):
        segment_recordings.prepare(long, long)
