"""data_prep/speechocean762.py on a fixture in the original WAV release layout, and on the FLAC copy when present."""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import shared_corpus, tone, write_wav

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data_prep"))
import speechocean762  # noqa: E402

from speechmeta.data.datadir import DataDir, validate_data_dir  # noqa: E402


def make_release(root: Path) -> None:
    """Two speakers in train/, one in test/, WAV files under WAVE/SPEAKERxxxx/, tab-separated tables."""
    layout = {"train": {"0003": ["000030012", "000030020"], "0001": ["000010011"]}, "test": {"0002": ["000020001"]}}
    for split, spks in layout.items():
        rows = {"wav.scp": [], "text": [], "utt2spk": [], "spk2age": [], "spk2gender": []}
        for spk, utts in spks.items():
            for utt in utts:
                write_wav(root / "WAVE" / f"SPEAKER{spk}" / f"{utt}.WAV", tone(0.5))
                rows["wav.scp"].append(f"{utt}\tWAVE/SPEAKER{spk}/{utt}.WAV")
                rows["text"].append(f"{utt}\tWe call it bear.")
                rows["utt2spk"].append(f"{utt}\t{spk}")
            rows["spk2age"].append(f"{spk}\t{int(spk) + 10}")
            rows["spk2gender"].append(f"{spk}\tf")
        (root / split).mkdir(parents=True)
        for name, lines in rows.items():
            (root / split / name).write_text("\n".join(lines) + "\n")
    (root / "train" / "wav.scp").write_text((root / "train" / "wav.scp").read_text()
                                            + "000010099\tWAVE/SPEAKER0001/000010099.WAV\n")
    (root / "train" / "text").write_text((root / "train" / "text").read_text() + "000010099\tLOST\n")
    (root / "train" / "utt2spk").write_text((root / "train" / "utt2spk").read_text() + "000010099\t0001\n")


def test_release_layout(tmp_path):
    make_release(tmp_path / "so")
    assert speechocean762.main(["--corpus-dir", str(tmp_path / "so"), "--out", str(tmp_path / "data")]) == 0
    train, test = DataDir.load(tmp_path / "data" / "train"), DataDir.load(tmp_path / "data" / "test")
    assert train.utts == ["0001-000010011", "0003-000030012", "0003-000030020"] and test.spks == ["0002"]
    assert train.text["0001-000010011"] == "WE CALL IT BEAR"
    assert (tmp_path / "data" / "train" / "spk2age").read_text() == "0001 11\n0003 13\n"
    assert validate_data_dir(tmp_path / "data" / "train") == []
    _, skipped = speechocean762.prepare_split(tmp_path / "so", "train", tmp_path / "again")
    assert skipped == [("000010099", f"audio file not found: {tmp_path / 'so/WAVE/SPEAKER0001/000010099.WAV'}")]


def test_real_flac_copy(tmp_path):
    corpus = shared_corpus("speechocean762")
    out, skipped = speechocean762.prepare_split(corpus, "train", tmp_path / "train")
    data = DataDir.load(out)
    assert skipped == [] and len(data.spks) == 125 and len(data.utts) == 2500
    assert all(len(u) == 20 for u in data.spk2utt.values())
    assert (out / "spk2age").exists() and (out / "spk2gender").exists()
    assert [p for p in validate_data_dir(out) if p.level == "error"] == []
