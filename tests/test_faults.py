"""Bad input and faults the way a user meets them, through the `speechmeta` command: every bad data dir, audio file,
speaker, model and config gives an error naming the file (and line or utterance) and what to do, or a listed skip,
never a traceback or a silently wrong result; a SIGKILL at a random moment of compute-feats or train, then a rerun,
ends with the files of an uninterrupted run; a full disk while a checkpoint is written keeps the previous one; a
second recipe run on the same exp/ refuses to start. The slow cases (several kills of every stage) are in
benchmarks/faults.py."""

from __future__ import annotations

import os
import random
import resource
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import (
    REPO,
    cli,
    kill_when,
    lines,
    output_differences,
    partial_files,
    rewrite,
    tiny_base,
    tone,
    write_wav,
)

from speechmeta.checkpoint import load_checkpoint
from speechmeta.cli import main
from speechmeta.data.datadir import DataDir
from speechmeta.data.feats_store import FeatsReader

TINY_TRAIN = ["model.size=tiny", "train.max_frames=1500", "train.checkpoint_every=1", "train.warmup_steps=5",
              "train.average_last=2", "train.device=cpu"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Synthetic train/ (spk001-spk004, 6 utterances each) and test/ (spk005, spk006) with features, units.txt and a
    tiny model in base/."""
    out = tmp_path_factory.mktemp("faults")
    tiny_base(out, 6, 2, 6, ["model.dropout=0.0"])
    return out


def run_main(capsys, *args) -> tuple[int, str, str]:
    """`speechmeta ARGS` in this process: (exit status, stdout, stderr). An exception escaping main is a test error,
    i.e. what would have been a traceback."""
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


# --- data dirs -------------------------------------------------------------------------------------------------

def _swap_first_two(d: Path) -> None:
    t = lines(d / "text")
    rewrite(d / "text", [t[1], t[0], *t[2:]])


def _duplicate(d: Path) -> None:
    w = lines(d / "wav.scp")
    rewrite(d / "wav.scp", [w[0], *w])


def _spk2utt_mismatch(d: Path) -> None:
    s = lines(d / "spk2utt")
    rewrite(d / "spk2utt", [s[0].replace(" spk0-utt2", ""), s[1] + " spk0-utt2"])


def _first_wav(entry: str):
    def change(d: Path) -> None:
        w = lines(d / "wav.scp")
        rewrite(d / "wav.scp", [f"spk0-utt0 {entry.format(path=w[0].split()[1])}", *w[1:]])
    return change


def _speaker(spk: str):
    def change(d: Path) -> None:
        pairs = [x.split() for x in lines(d / "utt2spk")]
        rewrite(d / "utt2spk", [f"{u} {spk if s == 'spk0' else s}" for u, s in pairs])
        rewrite(d / "spk2utt", [x.replace("spk0 ", f"{spk} ", 1) if x.startswith("spk0 ") else x
                                for x in lines(d / "spk2utt")])
    return change


DATA_DIR_CASES = {  # name: (defect, message of validate-data, utterance that fix-data drops or None)
    "unsorted": (_swap_first_two, "text:2: error: not sorted: 'spk0-utt0' comes after 'spk0-utt1'", None),
    "duplicate key": (_duplicate, "wav.scp:2: error: duplicate key 'spk0-utt0' (first on line 1)", None),
    "utt2spk/spk2utt mismatch": (_spk2utt_mismatch, "spk2utt:2: error: speaker 'spk1' lists 'spk0-utt2'", None),
    "text without audio": (lambda d: rewrite(d / "wav.scp", lines(d / "wav.scp")[1:]),
                           "utt2spk:1: error: utterance 'spk0-utt0' has no audio", "spk0-utt0"),
    "audio without text": (lambda d: rewrite(d / "text", lines(d / "text")[:-1]),
                           "utt2spk:6: error: utterance 'spk1-utt2' has no transcript", "spk1-utt2"),
    "empty transcript": (lambda d: rewrite(d / "text", [lines(d / "text")[0], "spk0-utt1", *lines(d / "text")[2:]]),
                         "text:2: error: utterance 'spk0-utt1': empty transcript", "spk0-utt1"),
    "windows line endings": (lambda d: (d / "text").write_bytes((d / "text").read_bytes().replace(b"\n", b"\r\n")),
                             "text:1: error: Windows line ending (CR LF); convert the file with dos2unix", None),
    "utf-8 bom": (lambda d: (d / "utt2spk").write_bytes(b"\xef\xbb\xbf" + (d / "utt2spk").read_bytes()),
                  "utt2spk:1: error: file starts with a UTF-8 byte-order mark (BOM)", None),
    "not utf-8": (lambda d: (d / "text").write_bytes((d / "text").read_bytes().replace(b"HELLO", b"H\xe9LLO", 1)),
                  "text:1: error: not valid UTF-8 (byte 0xe9 at column", "spk0-utt0"),
    "pipe in wav.scp": (_first_wav("sox {path} -t wav - |"), "wav.scp:1: error: 'spk0-utt0': 'sox ", "spk0-utt0"),
    "; in wav.scp": (_first_wav("{path}; touch PWNED"), "is a command, not a file path", "spk0-utt0"),
    "$(...) in wav.scp": (_first_wav("$(touch PWNED).wav"), "is a command, not a file path", "spk0-utt0"),
    "speaker id with /": (_speaker("a/b"), "utt2spk:1: error: speaker id 'a/b' contains '/'", "spk0-utt0"),
    "speaker id with spaces": (_speaker("a b"), "utt2spk:1: error: utterance 'spk0-utt0': speaker id 'a b' contains "
                                                "spaces", "spk0-utt0"),
}


@pytest.mark.parametrize("case", list(DATA_DIR_CASES))
def test_bad_data_dir_is_named_refused_and_fixable(make_data_dir, tmp_path, monkeypatch, capsys, case):
    defect, message, dropped = DATA_DIR_CASES[case]
    d = make_data_dir()
    monkeypatch.chdir(tmp_path)  # where a `touch PWNED` would land if anything ran it
    defect(d)
    rc, out, _ = run_main(capsys, "validate-data", d)
    assert rc == 1 and message in out and f"{d}: INVALID" in out, out
    rc, _, err = run_main(capsys, "compute-feats", d, "--no-progress")
    assert rc == 1 and message in err and f"speechmeta fix-data {d}" in err, err  # what to do
    assert not (d / "feats.scp").exists()
    rc, out, _ = run_main(capsys, "fix-data", d)  # ... and doing it works
    assert rc == 0 and (f"dropped {dropped}:" in out if dropped else "dropped 0" in out), out
    rc, out, _ = run_main(capsys, "validate-data", d)
    assert rc == 0 and f"{d}: OK: 0 error(s)" in out, out
    assert not list(tmp_path.rglob("PWNED"))


def test_path_outside_the_audio_root_is_refused(make_data_dir, tmp_path, capsys):
    d = make_data_dir()
    root = tmp_path / "audio" / "data"
    rewrite(d / "wav.scp", [f"spk0-utt0 ../../{d.name}/text", *[f"{x.split()[0]} {Path(x.split()[1]).name}"
                                                               for x in lines(d / "wav.scp")[1:]]])
    rc, _, err = run_main(capsys, "compute-feats", d, "--audio-root", root, "--no-progress")
    assert rc == 1 and "wav.scp:1: error: 'spk0-utt0': '../../data/text' resolves to" in err
    assert "outside the audio root" in err and not (d / "feats.scp").exists()


# --- audio -----------------------------------------------------------------------------------------------------

def _bad_audio(kind: str, path: Path) -> str:
    """Damage `path` in one way; returns the reason compute-feats must give."""
    raw = path.read_bytes()
    if kind == "zero bytes":
        path.write_bytes(b"")
        return "empty file (0 bytes)"
    if kind == "truncated header":
        path.write_bytes(raw[:20])
        return "not readable audio"
    if kind == "truncated data":
        path.write_bytes(raw[: len(raw) // 2])
        return "truncated WAV: header declares"
    if kind == "wrong format":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(300))
        return "not readable audio"
    if kind == "too short for one frame":
        write_wav(path, np.zeros(200, dtype=np.float32))
        return "too short: 12 ms, less than one 25 ms window"
    x = tone(0.3)
    x[100] = np.nan if kind == "NaN samples" else np.inf
    write_wav(path, x, subtype="FLOAT")
    return "contains NaN or infinite samples"


@pytest.mark.parametrize("kind", ["zero bytes", "truncated header", "truncated data", "wrong format",
                                  "too short for one frame", "NaN samples", "inf samples"])
def test_bad_audio_stops_naming_utterance_and_file_or_is_skipped_and_listed(make_data_dir, capsys, kind):
    d = make_data_dir()
    bad = DataDir.load(d).audio("spk1-utt1").path
    reason = _bad_audio(kind, bad)
    rc, _, err = run_main(capsys, "compute-feats", d, "--no-progress")
    assert rc == 1 and f"error: utterance 'spk1-utt1': {bad}: {reason}" in err, err
    assert "--skip-bad skips such utterances" in err and not (d / "feats.scp").exists()
    rc, _, err = run_main(capsys, "compute-feats", d, "--no-progress", "--skip-bad")
    assert rc == 0 and "1 skipped as bad" in err
    (listed,) = lines(d / "bad_utts.txt")
    assert listed.startswith(f"spk1-utt1\t{bad}\t{reason}")
    assert "spk1-utt1" not in FeatsReader(d) and len(FeatsReader(d)) == 5


def test_missing_audio_file_is_a_data_dir_error(make_data_dir, capsys):
    d = make_data_dir()
    bad = DataDir.load(d).audio("spk0-utt2").path
    bad.unlink()
    rc, _, err = run_main(capsys, "compute-feats", d, "--no-progress")
    assert rc == 1 and f"wav.scp:3: error: 'spk0-utt2': audio file not found: {bad}" in err


def test_stereo_is_its_mono_mix_and_other_rates_keep_their_pitch(make_data_dir, tmp_path, capsys):
    d = make_data_dir(spks=1, utts=6)
    data = DataDir.load(d)
    left, right = tone(0.5, seed=1), tone(0.5, freq=300, seed=2)
    sf.write(str(data.audio("spk0-utt0").path), np.stack([left, right], axis=1), 16000, subtype="PCM_16")
    mix = sf.read(str(data.audio("spk0-utt0").path), dtype="float32")[0].mean(axis=1)
    write_wav(data.audio("spk0-utt1").path, mix, subtype="FLOAT")  # the same samples, already mono
    for utt, rate in zip(["spk0-utt2", "spk0-utt3", "spk0-utt4", "spk0-utt5"], [8000, 22050, 44100, 48000],
                         strict=True):
        write_wav(data.audio(utt).path, tone(1.0, rate, freq=1000.0), rate)
    reference = fbank_of(tone(1.0, 16000, freq=1000.0))
    assert run_main(capsys, "compute-feats", d, "--no-progress")[0] == 0
    feats = FeatsReader(d)
    np.testing.assert_array_equal(feats["spk0-utt0"], feats["spk0-utt1"])
    for utt in ("spk0-utt2", "spk0-utt3", "spk0-utt4", "spk0-utt5"):
        assert feats[utt].shape == reference.shape, utt  # duration kept
        assert (feats[utt].argmax(axis=1) == reference.argmax(axis=1)).mean() > 0.95, utt  # pitch kept


def fbank_of(samples: np.ndarray) -> np.ndarray:
    from speechmeta.data.fbank import fbank

    return fbank(samples)


PEAK_RSS = ("import atexit, sys\n"
            "def peak():\n"
            "    status = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]\n"
            "    print(f'peak_rss_kb {status}', file=sys.stderr)\n"
            "atexit.register(peak)\n"
            "from speechmeta.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")


def peak_rss_mb(*args) -> tuple[subprocess.CompletedProcess, float]:
    """Run `speechmeta ARGS` in a fresh process; (result, its peak resident memory in MiB). VmHWM, unlike
    ru_maxrss, is not inherited from the parent across exec."""
    r = subprocess.run([*cli()[:1], "-c", PEAK_RSS, *map(str, args)], capture_output=True, text=True, timeout=300)
    return r, int(r.stderr.split("peak_rss_kb ")[1].split()[0]) / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc for the peak memory")
def test_thirty_minute_recording_in_bounded_memory_then_refused_by_name(corpus, tmp_path, capsys):
    long_wav = tmp_path / "long.wav"
    noise = np.random.default_rng(0).integers(-300, 300, size=30 * 60 * 16000, dtype=np.int16)
    sf.write(str(long_wav), noise, 16000, subtype="PCM_16")
    del noise
    d, small = copy_of(corpus, "test", "test_long"), copy_of(corpus, "test", "test_small")
    utt = lines(d / "wav.scp")[0].split()[0]
    rewrite(d / "wav.scp", [f"{utt} {long_wav}", *lines(d / "wav.scp")[1:]])
    shutil.rmtree(small / "fbank")
    r0, baseline = peak_rss_mb("compute-feats", small, "--no-progress")
    r, peak = peak_rss_mb("compute-feats", d, "--no-progress")
    assert r0.returncode == 0 and r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert FeatsReader(d).num_frames(utt) == 179998
    # 30 min at 16 kHz: 110 MiB of float32 samples, 55 MiB of features; the frame-at-once FFT took 1.5 GiB more.
    assert peak - baseline < 500, (peak, baseline)
    np.testing.assert_allclose(FeatsReader(d)[utt][:400],
                               fbank_of(sf.read(str(long_wav), frames=16000 * 5, dtype="float32")[0])[:400],
                               rtol=1e-5, atol=1e-4)

    rc, _, err = run_main(capsys, "decode", "--model", corpus / "base" / "average.pt", "--data", d, "--out", d / "dec")
    assert rc == 1 and f"utterance '{utt}' ({long_wav})" in err and "179998 frames, more than the 20000" in err
    assert "segments file" in err and not (d / "dec" / "hyp.txt").exists()
    rc, _, err = run_main(capsys, "train", "--train-dir", d, "--valid-dir", corpus / "test", "--units",
                          corpus / "units.txt", "--exp-dir", d / "exp", "train.max_steps=1", *TINY_TRAIN)
    assert rc == 0 and "1 utterance(s) left out" in err
    (listed,) = lines(d / "exp" / "left_out.txt")
    assert listed.startswith(f"{utt}\t{d}\t179998 frames, more than the 1500 of a batch")


# --- transcripts and speakers ------------------------------------------------------------------------------------

def copy_of(corpus: Path, split: str, name: str) -> Path:
    """A copy of corpus/split (features included) beside it, so relative audio paths still resolve."""
    d = corpus / name
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(corpus / split, d)
    return d


def test_transcript_too_long_for_its_audio_is_left_out_and_listed(corpus, capsys):
    d = copy_of(corpus, "train", "train_long_text")
    utt = lines(d / "text")[3].split()[0]
    rewrite(d / "text", [f"{utt} {' '.join(['ABRACADABRA'] * 40)}" if x.startswith(utt + " ") else x
                         for x in lines(d / "text")])
    exp = corpus / "exp_long_text"
    rc, _, err = run_main(capsys, "train", "--train-dir", d, "--valid-dir", d, "--units", corpus / "units.txt",
                          "--exp-dir", exp, "train.max_steps=1", *TINY_TRAIN)
    assert rc == 0 and utt in err and "too short for its transcript" in err, err
    (listed,) = lines(exp / "left_out.txt")
    assert listed.startswith(f"{utt}\t{d}\ttoo short for its transcript:") and "479 needed for 479 units" in listed
    rc, _, err = run_main(capsys, "adapt", "--model", corpus / "base" / "average.pt", "--data", d, "--spk",
                          utt.split("-")[0], "--support-list", _write(corpus / "support.txt", utt), "--method", "lhuc",
                          "--steps", "1", "--lr", "1", "--device", "cpu", "--out", corpus / "never.safetensors")
    assert rc == 1 and f"utterance '{utt}'" in err and "too short for its transcript" in err
    assert not (corpus / "never.safetensors").exists()


def _write(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    return path


def test_characters_outside_the_units_are_named(corpus, capsys):
    d = copy_of(corpus, "train", "train_oov")
    utt = lines(d / "text")[0].split()[0]
    rewrite(d / "text", [f"{x} ÖÇ" if x.startswith(utt + " ") else x for x in lines(d / "text")])
    rc, _, err = run_main(capsys, "train", "--train-dir", d, "--valid-dir", d, "--units", corpus / "units.txt",
                          "--exp-dir", corpus / "exp_oov", "train.max_steps=1", *TINY_TRAIN)
    warning = next(line for line in err.splitlines() if "outside" in line)
    assert rc == 0 and "'Ö'" in warning and "1 utterance(s)" in warning and f"e.g. '{utt}'" in warning, warning
    assert "make-units" in warning
    rc, out, _ = run_main(capsys, "make-units", corpus / "train", "--out", corpus / "u2" / "units.txt", "--check", d)
    assert rc == 0 and "2 character(s) outside the units: 'Ö' x1, 'Ç' x1" in out


def test_fewer_utterances_than_k(corpus, capsys):
    model = corpus / "base" / "average.pt"
    rc, _, err = run_main(capsys, "adapt", "--model", model, "--data", corpus / "test", "--spk", "spk005", "--k", "7",
                          "--method", "lhuc", "--steps", "1", "--lr", "1", "--device", "cpu", "--out",
                          corpus / "k7.safetensors")
    assert rc == 1 and f"speaker 'spk005' has 6 utterance(s) in {corpus / 'test'}, fewer than K=7" in err
    rc, _, err = run_main(capsys, "meta-train", "--base", model, "--train-dir", corpus / "train", "--valid-dir",
                          corpus / "test", "--exp-dir", corpus / "meta_k", "meta.shots=4", "meta.query=4",
                          "meta.device=cpu")
    assert rc == 1 and "a meta-batch needs 4" in err and "spk001: 6 utterances, a task needs 8" in err
    assert "lower meta.shots, meta.query or meta.speakers_per_batch" in err


# --- models and configs ------------------------------------------------------------------------------------------

class _Payload:
    """Unpickling this runs a shell command: the attack weights_only loading must stop."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def profile(corpus):
    """An LHUC profile of spk005 adapted from base/average.pt."""
    out = corpus / "spk005.safetensors"
    assert main(["adapt", "--model", str(corpus / "base" / "average.pt"), "--data", str(corpus / "test"), "--spk",
                 "spk005", "--k", "2", "--method", "lhuc", "--steps", "1", "--lr", "1", "--device", "cpu", "--out",
                 str(out)]) == 0
    return out


def _profile_variant(profile: Path, out: Path, change) -> Path:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(profile), framework="pt") as f:
        metadata = f.metadata()
    save_file(change(load_file(str(profile))), str(out), metadata=metadata)
    return out


def test_models_and_profiles_that_do_not_fit_are_refused(corpus, profile, tmp_path, capsys):
    model, data = corpus / "base" / "average.pt", corpus / "test"
    torch.save({"model": {}, "hook": _Payload(tmp_path / "PWNED")}, tmp_path / "evil.pt")
    raw = model.read_bytes()
    (tmp_path / "cut.pt").write_bytes(raw[: len(raw) // 2])
    other = corpus / "base" / "epoch-1.pt"  # the same weights, another file: profiles are tied to their file
    cases = [
        ([tmp_path / "evil.pt"], f"refusing to load {tmp_path / 'evil.pt'}: it holds pickled objects"),
        ([tmp_path / "cut.pt"], f"cannot load {tmp_path / 'cut.pt'}: truncated or corrupt"),
        ([other, "--profile", profile], f"speaker profile {profile} was adapted from a model with SHA-256"),
        ([model, "--profile", _profile_variant(profile, tmp_path / "missing.safetensors",
                                               lambda t: dict(list(t.items())[1:]))],
         "missing ['blocks.0.speaker.lhuc.attn'], extra []"),
        ([model, "--profile", _profile_variant(profile, tmp_path / "extra.safetensors",
                                               lambda t: {**t, "blocks.0.evil": torch.zeros(2)})],
         "missing [], extra ['blocks.0.evil']"),
        ([model, "--profile", _profile_variant(profile, tmp_path / "shape.safetensors",
                                               lambda t: {k: torch.ones(3) for k in t})],
         "tensor 'blocks.0.speaker.lhuc.attn' has shape (3,), the model's (64,)"),
    ]
    for args, message in cases:
        rc, _, err = run_main(capsys, "decode", "--model", args[0], "--data", data, "--out", tmp_path / "dec",
                              *args[1:])
        assert rc == 1 and message in err, (args, err)
        assert not (tmp_path / "dec" / "hyp.txt").exists()
    assert not (tmp_path / "PWNED").exists()  # the pickled command never ran
    assert run_main(capsys, "decode", "--model", model, "--data", data, "--out", tmp_path / "dec", "--profile",
                    profile)[0] == 0


@pytest.mark.parametrize("yaml_text,message", [
    ("train:\n  epoch: 3\n", "c.yaml: unknown config key(s) train.epoch; valid keys under train:"),
    ("train:\n  epochs: three\n", "c.yaml: train.epochs: expected int, got 'three' (str)"),
    ("model:\n  size: tiny\n   dropout: 0.1\n", "c.yaml:3: not valid YAML"),
])
def test_config_errors_name_key_and_file(corpus, tmp_path, capsys, yaml_text, message):
    (tmp_path / "c.yaml").write_text(yaml_text)
    rc, _, err = run_main(capsys, "train", "--config", tmp_path / "c.yaml", "--train-dir", corpus / "train",
                          "--valid-dir", corpus / "train", "--units", corpus / "units.txt", "--exp-dir",
                          tmp_path / "exp")
    assert rc == 1 and message in err, err
    assert not list((tmp_path / "exp").glob("*.pt"))


def test_the_real_command_prints_no_traceback(corpus, tmp_path):
    """The cases above run main() in-process; the installed command's own process prints messages too."""
    (tmp_path / "cut.pt").write_bytes((corpus / "base" / "average.pt").read_bytes()[:1000])
    r = subprocess.run(cli("decode", "--model", tmp_path / "cut.pt", "--data", corpus / "test", "--out", tmp_path),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr and "truncated or corrupt" in r.stderr, r.stderr


# --- faults ------------------------------------------------------------------------------------------------------

def env1() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def test_sigkill_of_compute_feats_then_rerun_gives_identical_feature_files(make_data_dir, tmp_path):
    make_data_dir(spks=4, utts=40, name="ref")
    shutil.copytree(tmp_path / "ref", tmp_path / "run")  # wav.scp holds absolute paths: the same audio
    ref, run = tmp_path / "ref", tmp_path / "run"
    assert subprocess.run(cli("compute-feats", ref, "--no-progress"), env=env1(), capture_output=True).returncode == 0
    rng = random.Random(0)
    for _ in range(5):  # a kill after the first chunk and before the end: the chunks take ~50 ms each
        shutil.rmtree(run / "fbank", ignore_errors=True)
        killed = kill_when(cli("compute-feats", run, "--no-progress"), lambda: (run / "fbank" / "raw_fbank.0.json")
                           .exists(), rng.uniform(0, 0.15), env1())
        if killed and not (run / "feats.scp").exists():
            break
    else:
        pytest.fail("compute-feats was never killed mid-run")
    assert partial_files(ref, run) == []  # every chunk under its final name is a finished one
    r = subprocess.run(cli("compute-feats", run, "--no-progress"), env=env1(), capture_output=True, text=True)
    assert r.returncode == 0 and "from an earlier run" in r.stderr
    assert output_differences(ref, run) == []
    assert not list(run.rglob("*.tmp"))


def train_cmd(corpus: Path, exp: Path, *extra: str) -> list[str]:
    return cli("train", "--train-dir", corpus / "train", "--valid-dir", corpus / "test", "--units",
               corpus / "units.txt", "--exp-dir", exp, "--no-progress", *extra, *TINY_TRAIN, "model.dropout=0.1",
               "train.epochs=2")


@pytest.fixture(scope="module")
def reference_training(corpus):
    """train, uninterrupted: 2 epochs of 6 steps, a checkpoint after each step (dropout on, so RNG state matters)."""
    exp = corpus / "train_ref"
    r = subprocess.run(train_cmd(corpus, exp), env=env1(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return exp


def test_sigkill_of_train_then_resume_gives_the_same_model(corpus, reference_training):
    exp = corpus / "train_killed"
    killed = kill_when(train_cmd(corpus, exp), lambda: bool(list(exp.glob("step-*.pt"))),
                       random.Random(1).uniform(0, 0.6), env1())
    assert killed and not (exp / "average.pt").exists()
    assert partial_files(reference_training, exp) == []
    r = subprocess.run(train_cmd(corpus, exp, "--resume"), env=env1(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "resumed from" in r.stderr, r.stderr[-2000:]
    assert output_differences(reference_training, exp) == []  # bit-for-bit weights, optimizer, RNG; same metrics rows
    assert not list(exp.glob(".*.tmp"))


def test_kill_between_metrics_row_and_checkpoint_leaves_no_duplicate_row(corpus, reference_training):
    """The narrowest window of a kill, made on purpose: epoch 2's metrics row (and half of a next one) written, its
    checkpoint not, and a temporary file left by the interrupted write."""
    exp = corpus / "train_window"
    shutil.copytree(reference_training, exp)
    first = load_checkpoint(exp / "epoch-1.pt")["step"]
    for path in [exp / "epoch-2.pt", exp / "average.pt", *exp.glob("step-*.pt")]:
        if not path.name.startswith("step-") or int(path.stem.split("-")[1]) > first:
            path.unlink()
    with open(exp / "metrics.csv", "a") as f:
        f.write("3,40,4.1")
    (exp / ".epoch-2.pt.x1y2z3.tmp").write_bytes(b"half a checkpoint")
    r = subprocess.run(train_cmd(corpus, exp, "--resume"), env=env1(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "resumed from" in r.stderr and "epoch-1.pt" in r.stderr, r.stderr[-2000:]
    assert output_differences(reference_training, exp) == []  # epoch 2's row once, the cut row gone
    assert not list(exp.glob(".*.tmp"))


def test_full_disk_while_writing_a_checkpoint_keeps_the_previous_one(corpus, reference_training):
    exp = corpus / "train_disk_full"
    assert subprocess.run(train_cmd(corpus, exp, "train.max_steps=3"), env=env1(), capture_output=True).returncode == 0
    before = {p.name: p.read_bytes() for p in exp.glob("*.pt")}
    size = len(before["step-3.pt"])

    def small_disk() -> None:  # no file may grow past half a checkpoint; writing past it fails with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, size // 2))

    r = subprocess.run(train_cmd(corpus, exp, "--resume"), env=env1(), capture_output=True, text=True, timeout=300,
                       preexec_fn=small_disk)
    assert r.returncode == 1 and "Traceback" not in r.stderr and "File too large" in r.stderr, r.stderr[-2000:]
    assert "earlier checkpoints included, are intact" in r.stderr
    assert {p.name: p.read_bytes() for p in exp.glob("*.pt")} == before  # nothing new under a checkpoint's name
    assert load_checkpoint(exp / "step-3.pt")["step"] == 3 and not list(exp.glob(".*.tmp"))
    r = subprocess.run(train_cmd(corpus, exp, "--resume"), env=env1(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]  # space again: the rerun ends where the uninterrupted run did
    assert output_differences(reference_training, exp) == []


def test_second_recipe_run_on_the_same_exp_refuses_and_the_first_finishes(tmp_path):
    """A real first run, held inside stage 0 by a `python` that waits for a go file, and a second one started then."""
    shim = tmp_path / "bin"
    shim.mkdir()
    python = shim / "python"
    python.write_text(f"#!/bin/sh\nwhile [ ! -f {tmp_path / 'go'} ]; do sleep 0.05; done\nexec {cli()[0]} \"$@\"\n")
    python.chmod(0o755)
    env = {**env1(), "PATH": f"{shim}:{Path(cli()[0]).parent}:{os.environ['PATH']}"}
    cmd = ["bash", str(REPO / "recipes" / "synth" / "run.sh"), "--data", str(tmp_path / "data"), "--exp",
           str(tmp_path / "exp"), "--speakers", "4", "--heldout", "2", "--dev-speakers", "1", "--utts-per-speaker", "2",
           "--valid-utts", "1", "--nj", "1", "--stop-stage", "0"]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "exp" / "runs").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert first.poll() is None  # the first was running all along
    assert second.returncode == 1 and f"another run is using {tmp_path / 'exp'}" in second.stderr
    assert len(list((tmp_path / "exp" / "runs").iterdir())) == 1  # the second wrote no run record
    (tmp_path / "go").touch()
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err[-2000:]
    assert (tmp_path / "data" / ".prep.done").exists()
    assert main(["validate-data", str(tmp_path / "data" / "train")]) == 0
