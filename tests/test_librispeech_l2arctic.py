"""LibriSpeech and L2-ARCTIC parsing on fixtures in their release layouts (no internet here)."""

from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import Path

from conftest import tone, write_wav

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data_prep"))
import l2arctic  # noqa: E402
import librispeech  # noqa: E402

from speechmeta.data.datadir import DataDir, validate_data_dir  # noqa: E402


def make_librispeech(root: Path) -> None:
    for spk, chapter, n in (("103", "1240", 2), ("1034", "121119", 1)):
        folder = root / "LibriSpeech" / "dev-clean" / spk / chapter
        lines = []
        for i in range(n):
            utt = f"{spk}-{chapter}-{i:04d}"
            write_wav(folder / f"{utt}.flac", tone(0.4))
            lines.append(f"{utt} CHAPTER ONE MISSUS RACHEL LYNDE IS SURPRISED")
        lines.append(f"{spk}-{chapter}-9999 A LINE WITHOUT AUDIO")
        (folder / f"{spk}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    write_wav(root / "LibriSpeech" / "dev-clean" / "103" / "1240" / "103-1240-0077.flac", tone(0.2))
    (root / "LibriSpeech" / "SPEAKERS.TXT").write_text(
        "; ID | SEX | SUBSET | MINUTES | NAME\n103 | F | train-clean-100 | 25.00 | Jo\n1034 | M | x | 1 | Al\n")


def test_librispeech_layout(tmp_path):
    make_librispeech(tmp_path / "corpus")
    out, skipped = librispeech.prepare_subset(tmp_path / "corpus", "dev-clean", tmp_path / "data")
    data = DataDir.load(out)
    assert data.utts == ["103-1240-0000", "103-1240-0001", "1034-121119-0000"]  # byte order: "-" < "4"
    assert data.utt2spk["103-1240-0001"] == "103"
    assert (out / "spk2gender").read_text() == "103 f\n1034 m\n"
    assert validate_data_dir(out) == []
    reasons = dict(skipped)
    assert "no audio file" in reasons["103-1240-9999"] and "1034-121119-9999" in reasons
    assert reasons["103-1240-0077"] == "audio file without a transcript line"


def test_librispeech_download_stage_extracts_verified_tarball(tmp_path, monkeypatch):
    make_librispeech(tmp_path / "src")
    tarball = tmp_path / "served" / "dev-clean.tar.gz"
    tarball.parent.mkdir()
    with tarfile.open(tarball, "w:gz") as t:
        t.add(tmp_path / "src" / "LibriSpeech", arcname="LibriSpeech")
    import hashlib

    monkeypatch.setitem(librispeech.SHA256, "dev-clean", hashlib.sha256(tarball.read_bytes()).hexdigest())
    librispeech.download_subset(tmp_path / "corpus", "dev-clean", base_url=tarball.parent.as_uri() + "/")
    assert (tmp_path / "corpus" / "LibriSpeech" / "dev-clean" / "103" / "1240" / "103-1240-0000.flac").exists()


def test_l2arctic_layout_from_nested_zips(tmp_path):
    src = tmp_path / "src"
    for spk in ("ABA", "TXHC"):
        write_wav(src / spk / "wav" / "arctic_a0001.wav", tone(0.4), 44100)
        (src / spk / "transcript").mkdir(parents=True)
        (src / spk / "transcript" / "arctic_a0001.txt").write_text("Author of the danger trail, Philip Steels, etc.")
    write_wav(src / "ABA" / "wav" / "arctic_a0002.wav", tone(0.4), 44100)  # no transcript
    release = tmp_path / "l2arctic_release_v5.0.zip"
    with zipfile.ZipFile(release, "w") as outer:
        for spk in ("ABA", "TXHC"):
            inner = tmp_path / f"{spk}.zip"
            with zipfile.ZipFile(inner, "w") as z:
                for f in (src / spk).rglob("*"):
                    z.write(f, f.relative_to(src))
            outer.write(inner, f"{spk}.zip")
    l2arctic.unpack(release, tmp_path / "corpus")
    out, skipped = l2arctic.prepare(tmp_path / "corpus", tmp_path / "data")
    data = DataDir.load(out)
    assert data.utts == ["ABA-arctic_a0001", "TXHC-arctic_a0001"]
    assert data.text["ABA-arctic_a0001"] == "AUTHOR OF THE DANGER TRAIL PHILIP STEELS ETC"
    assert [u for u, _ in skipped] == ["ABA-arctic_a0002"] and "no transcript" in skipped[0][1]
    assert [p.level for p in validate_data_dir(out)] == []
