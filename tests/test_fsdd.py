"""data_prep/fsdd.py on a fixture in the release layout, and on the real corpus when ../shared/data has it."""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import shared_corpus, tone, write_wav

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data_prep"))
import fsdd  # noqa: E402

from speechmeta.data.datadir import DataDir, validate_data_dir  # noqa: E402


def test_fixture_layout(tmp_path):
    rec = tmp_path / "recordings"
    for name in ["3_jackson_7.wav", "0_george_12.wav", "9_george_0.wav", "0_jackson_1.wav"]:
        write_wav(rec / name, tone(0.3, 8000), 8000)
    (rec / "README.txt").write_text("not audio")
    stats = fsdd.prepare(rec, tmp_path / "data")
    assert stats["speakers"] == 2 and stats["utterances"] == 4
    assert stats["skipped"] == [("README.txt", "name is not {digit}_{speaker}_{index}.wav")]
    assert validate_data_dir(tmp_path / "data") == []
    data = DataDir.load(tmp_path / "data")
    assert data.utts == ["george-0-12", "george-9-00", "jackson-0-01", "jackson-3-07"]
    assert data.text["jackson-3-07"] == "THREE"


def test_real_fsdd(tmp_path):
    recordings = shared_corpus("fsdd/recordings")
    stats = fsdd.prepare(recordings, tmp_path / "data", speakers=["theo", "lucas"])
    assert stats["speakers"] == 2 and stats["utterances"] == 1000 and stats["skipped"] == []
    assert [p for p in validate_data_dir(tmp_path / "data") if p.level == "error"] == []
