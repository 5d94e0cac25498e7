"""Data-dir validation catches each kind of defect, with file and line; wav.scp commands are refused, never run."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import lines, rewrite

from speechmeta.data.datadir import DataDir, DataDirError, read_table, resolve_wav_entry, validate_data_dir


def errors(d: Path, **kw) -> list[str]:
    return [str(p) for p in validate_data_dir(d, **kw) if p.level == "error"]


def warnings(d: Path) -> list[str]:
    return [str(p) for p in validate_data_dir(d) if p.level == "warning"]


def test_valid_dir_has_no_problems(make_data_dir):
    d = make_data_dir()
    assert validate_data_dir(d) == []
    data = DataDir.load(d)
    assert data.utts == sorted(data.utt2spk) and len(data.utts) == 6
    assert data.spks == ["spk0", "spk1"]
    assert data.audio("spk0-utt1").path.exists()


def test_unsorted_is_reported_with_line(make_data_dir):
    d = make_data_dir()
    text = lines(d / "text")
    rewrite(d / "text", [text[1], text[0]] + text[2:])
    (msg,) = errors(d)
    assert msg.startswith(f"{d / 'text'}:2: error: not sorted") and "LC_ALL=C" in msg


def test_sorting_is_byte_order_not_locale(make_data_dir):
    d = make_data_dir()
    # In byte order upper case sorts before lower case ('B' < 'a'); a locale-aware sort would disagree.
    rewrite(d / "utt2spk", ["spk0-a spk0", "spk0-B spk0"])
    msgs = errors(d, check_audio=False)
    assert any("utt2spk:2: error: not sorted: 'spk0-B' comes after 'spk0-a'" in m for m in msgs)


def test_duplicate_key(make_data_dir):
    d = make_data_dir()
    wav = lines(d / "wav.scp")
    rewrite(d / "wav.scp", wav[:1] + wav[:1] + wav[1:])
    assert f"{d / 'wav.scp'}:2: error: duplicate key 'spk0-utt0' (first on line 1)" in errors(d)


def test_utt2spk_spk2utt_mismatch(make_data_dir):
    d = make_data_dir()
    spk2utt = lines(d / "spk2utt")
    rewrite(d / "spk2utt", [spk2utt[0].replace(" spk0-utt2", ""), spk2utt[1] + " spk0-utt2"])
    msgs = errors(d)
    assert any("spk2utt:2" in m and "lists 'spk0-utt2'" in m and "'spk0'" in m for m in msgs)
    assert any("utt2spk:3" in m and "missing from spk2utt" in m for m in msgs)


def test_text_without_audio_and_audio_without_text(make_data_dir):
    d = make_data_dir()
    rewrite(d / "wav.scp", lines(d / "wav.scp")[1:])  # spk0-utt0 loses its audio
    rewrite(d / "text", [t for t in lines(d / "text") if not t.startswith("spk1-utt2")])
    msgs = errors(d)
    assert any("utt2spk:1" in m and "'spk0-utt0' has no audio" in m for m in msgs)
    assert any("utt2spk:6" in m and "'spk1-utt2' has no transcript" in m for m in msgs)


def test_empty_transcript(make_data_dir):
    d = make_data_dir()
    t = lines(d / "text")
    rewrite(d / "text", [t[0].split()[0]] + t[1:])
    assert f"{d / 'text'}:1: error: utterance 'spk0-utt0': empty transcript" in errors(d)


def test_windows_line_endings_bom_and_bad_utf8(make_data_dir):
    d = make_data_dir()
    raw = (d / "text").read_bytes()
    (d / "text").write_bytes(b"\xef\xbb\xbf" + raw.replace(b"\n", b"\r\n", 1))
    msgs = errors(d)
    assert any("text:1: error: file starts with a UTF-8 byte-order mark" in m for m in msgs)
    assert any("text:1: error: Windows line ending" in m for m in msgs)
    (d / "text").write_bytes(raw.replace(b"HELLO", b"H\xe9LLO", 1))
    assert any("text:1: error: not valid UTF-8 (byte 0xe9 at column" in m for m in errors(d))


def test_missing_required_file(make_data_dir):
    d = make_data_dir()
    (d / "spk2utt").unlink()
    assert errors(d) == [f"{d / 'spk2utt'}: error: required file missing (regenerate it with 'speechmeta fix-data')"]



def test_untranscribed_needs_no_text_but_a_text_there_is_checked(make_data_dir):
    d = make_data_dir()
    t = lines(d / "text")
    rewrite(d / "text", [t[0].split()[0]] + t[1:])  # an empty transcript
    assert any("empty transcript" in p.message for p in validate_data_dir(d, need_text=False))
    (d / "text").unlink()
    assert [p for p in validate_data_dir(d, need_text=False) if p.level == "error"] == []
    assert errors(d) == [f"{d / 'text'}: error: required file missing (without transcripts a data dir serves "
                         "compute-feats, decode and adapt --unsupervised only)"]
    data = DataDir.load(d, need_text=False)
    assert data.text == {} and len(data.utts) == 6

@pytest.mark.parametrize("entry", ["sox in.sph -t wav - |", "x.wav; rm -rf /", "$(touch PWNED).wav", "`touch PWNED`"])
def test_commands_in_wav_scp_are_refused_and_never_run(make_data_dir, tmp_path, monkeypatch, entry):
    d = make_data_dir()
    monkeypatch.chdir(tmp_path)
    w = lines(d / "wav.scp")
    rewrite(d / "wav.scp", [f"spk0-utt0 {entry}"] + w[1:])
    msgs = errors(d)
    assert any("wav.scp:1: error: 'spk0-utt0'" in m and "is a command, not a file path" in m for m in msgs)
    with pytest.raises(DataDirError, match="spk0-utt0"):
        DataDir.load(d)
    assert not (tmp_path / "PWNED").exists() and not (d / "PWNED").exists()


def test_missing_audio_file_and_relative_paths(make_data_dir, tmp_path):
    d = make_data_dir()
    rewrite(d / "wav.scp", ["spk0-utt0 nowhere.wav"] + lines(d / "wav.scp")[1:])
    assert any(f"wav.scp:1: error: 'spk0-utt0': audio file not found: {d / 'nowhere.wav'}" in m for m in errors(d))
    # Relative paths resolve against the data dir, or against --audio-root.
    rel = [f"{line.split()[0]} audio/data/{line.split()[0]}.wav" for line in lines(d / "wav.scp")[1:]]
    rewrite(d / "wav.scp", ["spk0-utt0 audio/data/spk0-utt0.wav"] + rel)
    assert errors(d, audio_root=tmp_path) == []
    assert len(errors(d)) == 6  # not found relative to the data dir itself


def test_path_outside_audio_root_is_refused(make_data_dir, tmp_path):
    d = make_data_dir()
    root = tmp_path / "audio" / "data"
    with pytest.raises(ValueError, match="outside the audio root"):
        resolve_wav_entry("../../data/text", d, root)
    w = lines(d / "wav.scp")
    rewrite(d / "wav.scp", [f"spk0-utt0 {d / 'text'}"] + w[1:])
    assert any("wav.scp:1" in m and "outside the audio root" in m for m in errors(d, audio_root=root))


def test_speaker_prefix_and_speaker_count_warnings(make_data_dir):
    d = make_data_dir(spks=1, utts=2)
    assert any("1 speaker(s): speaker adaptation and meta-learning need several" in w for w in warnings(d))
    rewrite(d / "utt2spk", ["spk0-utt0 alice", "spk0-utt1 alice"])
    rewrite(d / "spk2utt", ["alice spk0-utt0 spk0-utt1"])
    assert any("utt2spk:1: warning: utterance id 'spk0-utt0' is not prefixed by its speaker id 'alice'" in w
               for w in warnings(d))


def test_speaker_id_with_slash_is_an_error(make_data_dir):
    d = make_data_dir(spks=1, utts=1)
    rewrite(d / "utt2spk", ["spk0-utt0 spk0/x"])
    rewrite(d / "spk2utt", ["spk0/x spk0-utt0"])
    assert any("utt2spk:1: error: speaker id 'spk0/x' contains '/'" in m for m in errors(d))


def test_segments(make_data_dir):
    d = make_data_dir(spks=2, utts=1)
    rec = {line.split()[0]: line.split()[1] for line in lines(d / "wav.scp")}
    rewrite(d / "wav.scp", [f"rec{i} {path}" for i, path in enumerate(rec.values())])
    rewrite(d / "segments", ["spk0-utt0 rec0 0.00 0.20", "spk1-utt0 rec1 0.05 -1"])
    assert errors(d) == []
    data = DataDir.load(d)
    assert data.audio("spk0-utt0").end == 0.2 and data.audio("spk1-utt0").end is None
    rewrite(d / "segments", ["spk0-utt0 rec0 0.30 0.20", "spk1-utt0 rec9 0.05 -1"])
    msgs = errors(d)
    assert any("segments:1" in m and "bad times" in m for m in msgs)
    assert any("segments:2" in m and "recording 'rec9' not in wav.scp" in m for m in msgs)


def test_read_table_keeps_rest_of_line():
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "text"
        p.write_text("a  HELLO   THERE \nb\n")
        t = read_table(p)
        assert [(e.line, e.key, e.value) for e in t.entries] == [(1, "a", "HELLO   THERE"), (2, "b", "")]
