"""The speechmeta command: help texts, exit codes, and user errors printed without a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from speechmeta.cli import build_parser, main
from speechmeta.data.datadir import DataDir

SUBCOMMANDS = ["validate-data", "fix-data", "compute-feats", "make-units", "train", "meta-train", "decode",
               "train-lm", "score"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "speechmeta.cli", *args], capture_output=True, text=True)


def test_help_explains_every_subcommand():
    out = run("--help")
    assert out.returncode == 0
    for name in SUBCOMMANDS:
        assert name in out.stdout
    for name in SUBCOMMANDS:
        with pytest.raises(SystemExit) as e:
            build_parser().parse_args([name, "--help"])
        assert e.value.code == 0


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_subcommand_help_has_a_description(name, capsys):
    with pytest.raises(SystemExit):
        main([name, "--help"])
    assert len(capsys.readouterr().out.split()) > 30


def test_validate_data_exit_codes(make_data_dir, capsys):
    d = make_data_dir()
    assert main(["validate-data", str(d)]) == 0
    assert "OK: 0 error(s), 0 warning(s)" in capsys.readouterr().out
    (d / "wav.scp").write_text((d / "wav.scp").read_text().replace(" /", " sox /", 1).replace(".wav\n", ".wav |\n", 1))
    assert main(["validate-data", str(d)]) == 1
    out = capsys.readouterr().out
    assert f"{d / 'wav.scp'}:1: error: 'spk0-utt0'" in out and "INVALID: 1 error(s)" in out


def test_fix_data_prints_each_dropped_utterance(make_data_dir, capsys):
    d = make_data_dir()
    (d / "text").write_text("".join(line + "\n" for line in (d / "text").read_text().splitlines()[1:]))
    assert main(["fix-data", str(d)]) == 0
    out = capsys.readouterr().out
    assert "dropped spk0-utt0: no transcript in text" in out and "kept 5 utterance(s), dropped 1" in out


def test_compute_feats_and_make_units(make_data_dir, tmp_path):
    d = make_data_dir()
    out = run("compute-feats", str(d), "--no-progress", "fbank.num_mel_bins=40")
    assert out.returncode == 0, out.stderr
    assert "6 utterances" in out.stderr and (d / "log" / "compute-feats.log").exists()
    assert (d / "feats.scp").exists() and (d / "cmvn.npz").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "text").write_text("x1 HELLO WÖRLD\n")
    out = run("make-units", str(d), "--check", str(other))
    assert out.returncode == 0, out.stderr
    assert "13 units (characters) for 6 transcripts" in out.stdout
    assert "1 character(s) outside the units: 'Ö' x1" in out.stdout


def test_user_errors_are_messages_not_tracebacks(make_data_dir):
    d = make_data_dir()
    bad = DataDir.load(d).audio("spk0-utt2").path
    bad.write_bytes(b"RIFF....WAVEnot really")
    out = run("compute-feats", str(d), "--no-progress")
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert f"speechmeta compute-feats: error: utterance 'spk0-utt2': {bad}: not readable audio" in out.stderr
    assert "--skip-bad" in out.stderr
    out = run("compute-feats", str(d), "--no-progress", "fbank.num_mel_bins=lots")
    assert out.returncode == 1 and "fbank.num_mel_bins: expected int" in out.stderr and "Traceback" not in out.stderr


def test_commands_that_need_no_model_start_without_torch(make_data_dir, tmp_path):
    """A recipe calls score and validate-data many times: importing torch would cost each call seconds."""
    d = make_data_dir()
    (tmp_path / "hyp").write_text((d / "text").read_text())
    code = ("import sys; from speechmeta.cli import main; "
            f"assert main(['validate-data', {str(d)!r}]) == 0; "
            f"assert main(['score', '--ref', {str(d / 'text')!r}, '--hyp', {str(tmp_path / 'hyp')!r}, "
            f"'--out', {str(tmp_path / 'score')!r}]) == 0; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "False" and (tmp_path / "score" / "wer.json").is_file()
