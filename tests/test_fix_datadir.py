"""fix-data keeps only complete utterances, backs up the originals and names every dropped utterance."""

from __future__ import annotations

from speechmeta.data.datadir import validate_data_dir
from speechmeta.data.fix_datadir import fix_data_dir


def test_fix_data_drops_incomplete_utterances_with_reasons(make_data_dir):
    d = make_data_dir(spks=2, utts=3)
    original = {name: (d / name).read_bytes() for name in ("wav.scp", "text", "utt2spk", "spk2utt")}
    wav = (d / "wav.scp").read_text().splitlines()
    wav[1] = "spk0-utt1 sox x.sph - |"  # a command
    wav[2] = "spk0-utt2 /no/such/file.wav"
    (d / "wav.scp").write_text("\n".join(wav[:4] + wav[5:]) + "\n")  # spk1-utt1 loses its audio
    text = (d / "text").read_text().splitlines()
    text[0] = "spk0-utt0"  # empty transcript
    (d / "text").write_text("\r\n".join(text + [text[-1]]) + "\r\n")  # CR LF and a duplicate line
    (d / "spk2utt").write_text("spk0 spk0-utt0\n")  # stale

    report = fix_data_dir(d)

    reasons = dict(report.dropped)
    assert reasons["spk0-utt0"] == "empty transcript"
    assert "is a command" in reasons["spk0-utt1"]
    assert reasons["spk0-utt2"] == "audio file not found: /no/such/file.wav"
    assert reasons["spk1-utt1"] == "no audio in wav.scp"
    assert report.kept == 2 and len(report.dropped) == 4
    assert any("duplicate key 'spk1-utt2' dropped" in n for n in report.notes)
    assert any("Windows line ending" in n for n in report.notes)
    assert [p.level for p in validate_data_dir(d)] == ["warning"]  # only spk1 is left: one speaker
    assert (d / "spk2utt").read_text() == "spk1 spk1-utt0 spk1-utt2\n"
    backup = report.backup
    assert backup.parent == d / ".backup"
    assert (backup / "spk2utt").read_text() == "spk0 spk0-utt0\n"
    assert (backup / "utt2spk").read_bytes() == original["utt2spk"]


def test_fix_data_on_a_clean_dir_changes_nothing(make_data_dir):
    d = make_data_dir()
    before = {name: (d / name).read_bytes() for name in ("wav.scp", "text", "utt2spk", "spk2utt")}
    report = fix_data_dir(d)
    assert report.dropped == [] and report.notes == [] and report.kept == 6
    assert {name: (d / name).read_bytes() for name in before} == before


def test_fix_data_filters_speaker_files_and_never_overwrites_a_backup(make_data_dir):
    d = make_data_dir(spks=2, utts=1)
    (d / "spk2gender").write_text("spk0 f\nspk1 m\n")
    (d / "text").write_text("spk1-utt0 HI\n")
    first = fix_data_dir(d)
    second = fix_data_dir(d)
    assert first.backup != second.backup and first.backup.exists()
    assert (d / "spk2gender").read_text() == "spk1 m\n"
    assert dict(first.dropped) == {"spk0-utt0": "no transcript in text"}
