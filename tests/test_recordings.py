"""data_prep/recordings.py: a folder of someone's own recordings -> a data dir that validates and decodes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
from conftest import tone, write_wav

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data_prep"))
import recordings  # noqa: E402

from speechmeta.data.datadir import DataDir, validate_data_dir  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[1] / "data_prep" / "recordings.py"


def test_transcripts_beside_the_audio(tmp_path):
    rec = tmp_path / "anna recordings"  # a space in the path: wav.scp keeps it whole
    write_wav(rec / "001.wav", tone(0.5), 16000)
    (rec / "001.txt").write_text("\ufeffHello  there\r\nworld\n", encoding="utf-8")  # BOM, CR LF, two lines
    (rec / "day 2").mkdir()
    sf.write(str(rec / "day 2" / "002.flac"), tone(0.4), 16000)
    (rec / "day 2" / "002.lab").write_text("good morning")
    write_wav(rec / "003.wav", tone(0.3), 16000)  # no transcript
    write_wav(rec / "004.wav", tone(0.3), 16000)
    (rec / "004.txt").write_text("  \n")
    (rec / "005.wav").write_bytes(b"RIFF not audio")
    (rec / "005.txt").write_text("broken")
    (rec / "notes.md").write_text("not audio, not looked at")
    stats = recordings.prepare(rec, tmp_path / "data", spk="anna")
    assert (stats["speakers"], stats["utterances"]) == (1, 2)
    assert stats["hours"] == pytest.approx(0.9 / 3600, rel=1e-3)
    reasons = dict(stats["skipped"])
    assert set(reasons) == {"003.wav", "004.wav", "005.wav"}
    assert reasons["003.wav"] == "no transcript (no 003.txt or 003.lab beside it)"
    assert reasons["004.wav"] == "empty transcript"
    assert reasons["005.wav"].startswith("unreadable audio")
    assert [p.message for p in validate_data_dir(tmp_path / "data")] == [
        "1 speaker(s): speaker adaptation and meta-learning need several"]  # a warning: one person's recordings
    data = DataDir.load(tmp_path / "data")
    assert data.utts == ["anna-001", "anna-day_2-002"]
    assert data.text == {"anna-001": "Hello there world", "anna-day_2-002": "good morning"}
    assert data.wav["anna-001"] == (rec / "001.wav").resolve()
    assert data.spk2utt == {"anna": ["anna-001", "anna-day_2-002"]}


def test_transcripts_file_and_a_folder_per_speaker(tmp_path):
    rec = tmp_path / "people"
    for spk, name in [("bob", "a1.wav"), ("bob", "a2.wav"), ("Cleo M", "a1.flac"), ("Cleo M", "x/a3.wav")]:
        (rec / spk / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(rec / spk / name), tone(0.3), 16000)
    prompts = tmp_path / "prompts.txt"
    # a1: a prompt both speakers read, but bob's own line (his path under the audio dir) wins; a3: a stem in a
    # subfolder; a2.wav: a path with its extension; zz: a line too many
    prompts.write_text("a1 the shared prompt\nbob/a2.wav second prompt\nbob/a1 bob's own\na3 third\n"
                       "zz nobody said this\n")
    stats = recordings.prepare(rec, tmp_path / "data", transcripts=prompts)
    data = DataDir.load(tmp_path / "data")
    assert data.utt2spk == {"Cleo_M-a1": "Cleo_M", "Cleo_M-x-a3": "Cleo_M", "bob-a1": "bob", "bob-a2": "bob"}
    assert data.text == {"Cleo_M-a1": "the shared prompt", "Cleo_M-x-a3": "third", "bob-a1": "bob's own",
                         "bob-a2": "second prompt"}
    assert [key for key, _ in stats["skipped"]] == ["zz"]
    assert validate_data_dir(tmp_path / "data") == []


def test_refusals(tmp_path):
    rec = tmp_path / "rec"
    write_wav(rec / "a.wav", tone(0.3), 16000)
    (rec / "a.txt").write_text("one")
    with pytest.raises(ValueError, match="no speaker folder; give --spk"):
        recordings.prepare(rec, tmp_path / "data")
    with pytest.raises(ValueError, match="a speaker id holds only"):
        recordings.prepare(rec, tmp_path / "data", spk="anna smith")
    sf.write(str(rec / "a.flac"), tone(0.3), 16000)
    with pytest.raises(ValueError, match=r"a\.flac and .*a\.wav would both be utterance 'anna-a'|"
                                         r"a\.wav and .*a\.flac would both be utterance 'anna-a'"):
        recordings.prepare(rec, tmp_path / "data", spk="anna")
    (rec / "a.flac").unlink()
    (rec / "a.txt").write_bytes(b"caf\xe9")  # Latin-1
    with pytest.raises(ValueError, match=r"a\.txt: not UTF-8 text \(byte 0xe9"):
        recordings.prepare(rec, tmp_path / "data", spk="anna")
    (rec / "a.txt").unlink()
    with pytest.raises(ValueError, match="no recording has both readable audio and a transcript"):
        recordings.prepare(rec, tmp_path / "data", spk="anna")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        recordings.prepare(tmp_path / "nothing", tmp_path / "data", spk="anna")
    assert not (tmp_path / "data").exists()


def test_command_line(tmp_path):
    rec = tmp_path / "rec"
    for i in range(2):
        write_wav(rec / f"{i}.wav", tone(0.5, seed=i), 16000)
        (rec / f"{i}.txt").write_text(f"prompt {i}")
    write_wav(rec / "9.wav", tone(0.5), 16000)
    run = subprocess.run([sys.executable, str(SCRIPT), "--audio-dir", str(rec), "--spk", "anna", "--out",
                          str(tmp_path / "data")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "skipped 9.wav: no transcript" in run.stderr
    assert "1 speakers, 2 utterances" in run.stdout and "1 utterance(s) skipped" in run.stdout
    run = subprocess.run([sys.executable, str(SCRIPT), "--audio-dir", str(rec), "--out", str(tmp_path / "d2")],
                         capture_output=True, text=True)
    assert run.returncode == 1 and "error:" in run.stderr and "give --spk" in run.stderr
    assert "Traceback" not in run.stderr


def test_untranscribed(tmp_path):
    rec = tmp_path / "rec"
    write_wav(rec / "a.wav", tone(0.3), 16000)
    write_wav(rec / "b.wav", tone(0.4), 16000)
    (rec / "b.txt").write_text("ignored")
    (rec / "c.wav").write_bytes(b"RIFF not audio")
    out = tmp_path / "data"
    recordings.prepare(rec, out, spk="anna")  # transcribed first: a text file for b only
    assert (out / "text").read_text() == "anna-b ignored\n"
    stats = recordings.prepare(rec, out, spk="anna", untranscribed=True)
    assert stats["utterances"] == 2 and [key for key, _ in stats["skipped"]] == ["c.wav"]
    assert not (out / "text").exists()  # the earlier one would not match
    assert [p for p in validate_data_dir(out, need_text=False) if p.level == "error"] == []
    (missing,) = [p for p in validate_data_dir(out) if p.level == "error"]
    assert missing.message.startswith("required file missing (without transcripts")
    data = DataDir.load(out, need_text=False)
    assert data.utts == ["anna-a", "anna-b"] and data.text == {}
    with pytest.raises(ValueError, match="exclude each other"):
        recordings.prepare(rec, out, spk="anna", transcripts=tmp_path / "t.txt", untranscribed=True)
    run = subprocess.run([sys.executable, str(SCRIPT), "--audio-dir", str(rec), "--spk", "anna", "--out", str(out),
                          "--untranscribed"], capture_output=True, text=True)
    assert run.returncode == 0 and "2 utterances" in run.stdout and "no transcripts" in run.stdout, run.stderr
