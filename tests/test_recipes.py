"""The recipes end to end on tiny configurations: the synthetic recipe through all stages to its report, a rerun
that skips finished stages, the lock against a second run, the custom recipe on a data dir a user brings, and the
LibriSpeech recipe's data stages on a fixture in the release layout."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tone, write_wav

REPO = Path(__file__).resolve().parents[1]
TINY = """cmvn: utterance
model:
  size: tiny
  dropout: 0.0
train:
  epochs: 2
  lr: 3.0e-3
  warmup_steps: 10
  max_frames: 4000
  average_last: 1
"""
TINY_META = """meta:
  param_set: lhuc
  inner_steps: 1
  inner_lr: 5
  speakers_per_batch: 2
  shots: 2
  query: 2
  meta_steps: 2
  eval_every: 1
  eval_tasks: 1
  checkpoint_every: 1
"""


def venv_env() -> dict:
    """The environment for a recipe's shell: this Python's bin folder (speechmeta, python) first on PATH."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def run_recipe(name: str, tmp_path: Path, *options: str) -> subprocess.CompletedProcess:
    env = venv_env()
    (tmp_path / "tiny.yaml").write_text(TINY)
    (tmp_path / "meta.yaml").write_text(TINY_META)
    cmd = ["bash", str(REPO / "recipes" / name / "run.sh"), "--data", str(tmp_path / "data"), "--exp",
           str(tmp_path / "exp"), "--train-conf", str(tmp_path / "tiny.yaml"), "--meta-conf",
           str(tmp_path / "meta.yaml"), "--shots", "2", "--tune-steps", "1 2", "--finetune-lrs", "0.01",
           "--lhuc-lrs", "5", "--adapter-lrs", "0.3", "--device", "cpu", "--lm-weights", "0.3",
           "--word-bonuses", "1.0", "--nj", "1", *options]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)


def test_synth_recipe_all_stages_then_rerun_skips_them(tmp_path):
    opts = ["--speakers", "8", "--heldout", "4", "--dev-speakers", "2", "--utts-per-speaker", "10", "--nj", "2",
            "--valid-utts", "2", "--meta-algorithms", "fomaml"]
    r = run_recipe("synth", tmp_path, *opts)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for n in range(7):
        assert f"stage {n}:" in r.stdout
    report = json.loads((tmp_path / "exp" / "report" / "report.json").read_text())
    assert {(x["method"], x["k"]) for x in report["results"]} == {
        ("none", 0), ("finetune", 2), ("lhuc", 2), ("adapter", 2), ("fomaml", 0), ("fomaml", 2)}
    assert report["corpus"] == "synth" and all(x["speakers"] == 2 for x in report["results"])
    assert (tmp_path / "exp" / "report" / "wer_vs_k.png").exists()
    assert "| none | 0 |" in r.stdout or "none" in r.stdout  # the WER table is printed
    runs = list((tmp_path / "exp" / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "git_revision.txt").read_text().strip()
    command = shlex.split((runs[0] / "command.txt").read_text())  # the whole command line, quoted to run again
    assert command[0].endswith("recipes/synth/run.sh") and command[1:] == r.args[2:]
    options = (runs[0] / "options.txt").read_text()
    assert "speakers=8" in options and "shots=2" in options  # the recipe's own options and the shared ones
    # adaptation is decoded like the base model: beam search with its lexicon and the weights tuned on valid for the
    # model adapted (the meta model's own, tuned alike, its decoding of the test speakers beside the base model's)
    lexicon = str(tmp_path / "data" / "lang_char" / "words.txt")
    for method, k, model in (("none", 0, "base"), ("lhuc", 2, "base"), ("fomaml", 2, "meta_fomaml")):
        best = (tmp_path / "exp" / model / "tune_valid" / "beam_tuning.txt").read_text().splitlines()[-1]
        weight, bonus = (float(x) for x in re.search(r"lm_weight=(\S+) word_bonus=(\S+)", best).groups())
        summary = tmp_path / "exp" / "adapt" / method / f"k{k}" / "seed0" / "summary.json"
        decoding = json.loads(summary.read_text())["decoding"]
        assert decoding["method"] == "beam" and decoding["lexicon"] == lexicon
        assert (decoding["lm_weight"], decoding["word_bonus"]) == (weight, bonus)
    assert (tmp_path / "exp" / "meta_fomaml" / "decode_test" / "beam" / "score" / "wer.json").is_file()

    again = run_recipe("synth", tmp_path, *opts)
    assert again.returncode == 0, again.stderr[-3000:]
    assert [line for line in again.stdout.splitlines() if line.startswith("stage ")] == ["stage 6: report"]

    # Stage 5 again, each K tuned alone over two support draws of the dev speakers (a draw asked for after stage 2
    # is written by stage 5): its own tuning file, and the result made with it.
    (tmp_path / "exp" / ".adapt.done").unlink()
    assert not (tmp_path / "data" / "fewshot_dev" / "support.k2.seed1").exists()
    per_k = run_recipe("synth", tmp_path, *opts, "--stage", "5", "--stop-stage", "5", "--tune-per-k", "true",
                       "--baselines", "lhuc", "--tune-seeds", "0 1")
    assert per_k.returncode == 0, per_k.stderr[-3000:]
    tuned = json.loads((tmp_path / "exp" / "tune" / "lhuc.k2.json").read_text())
    summary = json.loads((tmp_path / "exp" / "adapt" / "lhuc" / "k2" / "seed0" / "summary.json").read_text())
    assert tuned["shots"] == [2] and summary["steps"] == tuned["best"]["steps"] and tuned["seeds"] == [0, 1]

    # A meta model that kept meta-step 0 is the base model: stage 5 reuses the base's decoding and beam tuning.
    for done in (".meta.done", ".adapt.done"):
        (tmp_path / "exp" / done).unlink()
    subprocess.run(["rm", "-rf", str(tmp_path / "exp" / "meta_fomaml")], check=True)
    (tmp_path / "meta0.yaml").write_text(TINY_META.replace("meta_steps: 2", "meta_steps: 0"))
    step0 = run_recipe("synth", tmp_path, *opts, "--stage", "4", "--stop-stage", "5", "--baselines", "none",
                       "--meta-conf", str(tmp_path / "meta0.yaml"))
    assert step0.returncode == 0, step0.stderr[-3000:]
    assert "meta_fomaml/meta.pt kept meta-step 0" in step0.stdout
    meta_dir = tmp_path / "exp" / "meta_fomaml"
    assert os.readlink(meta_dir / "decode_test") == "../base/decode_test"
    assert (meta_dir / "tune_valid" / "beam_tuning.txt").read_text() == (
        tmp_path / "exp" / "base" / "tune_valid" / "beam_tuning.txt").read_text()
    decoding = json.loads((tmp_path / "exp" / "adapt" / "fomaml" / "k2" / "seed0" / "summary.json").read_text())
    base_decoding = json.loads((tmp_path / "exp" / "adapt" / "none" / "k0" / "seed0" / "summary.json").read_text())
    assert decoding["decoding"] == base_decoding["decoding"]
    # Meta-trained again past step 0 in the same folder: its own decoding, not through those links into base/.
    for done in (".meta.done", ".adapt.done"):
        (tmp_path / "exp" / done).unlink()
    for ckpt in meta_dir.glob("*.pt"):
        ckpt.unlink()
    base_tuning = (tmp_path / "exp" / "base" / "tune_valid" / "beam_tuning.txt").read_text()
    (tmp_path / "meta_last.yaml").write_text(TINY_META + "  keep: last\n")
    last = run_recipe("synth", tmp_path, *opts, "--stage", "4", "--stop-stage", "5", "--baselines", "none",
                      "--meta-conf", str(tmp_path / "meta_last.yaml"))
    assert last.returncode == 0, last.stderr[-3000:]
    assert not (meta_dir / "decode_test").is_symlink() and not (meta_dir / "tune_valid").is_symlink()
    assert (meta_dir / "decode_test" / "beam" / "score" / "wer.json").is_file()
    assert (tmp_path / "exp" / "base" / "tune_valid" / "beam_tuning.txt").read_text() == base_tuning

    # Stage 5's methods run as parallel jobs: one that fails stops the stage (no .done marker, nonzero status).
    (tmp_path / "exp" / ".adapt.done").unlink()
    failed = run_recipe("synth", tmp_path, *opts, "--stage", "5", "--stop-stage", "5", "--nj", "2",
                        "--baselines", "none lhuc", "--meta-algorithms", "fomaml missing")
    assert failed.returncode != 0 and "meta_missing" in failed.stderr, failed.stderr[-3000:]
    assert not (tmp_path / "exp" / ".adapt.done").exists()

    # The beam's tuning is kept per setup: decoding without the lexicon tunes again instead of reusing it.
    tuning = tmp_path / "exp" / "base" / "tune_valid" / "beam_tuning.txt"
    assert f"lexicon={tmp_path / 'data' / 'lang_char' / 'words.txt'} " in tuning.read_text().splitlines()[0]
    env = {**venv_env(), "LM_WEIGHTS": "0.3", "WORD_BONUSES": "1.0"}
    data = tmp_path / "data"
    plain = subprocess.run(["bash", str(REPO / "recipes" / "TEMPLATE" / "decode_score.sh"),
                            str(tmp_path / "exp" / "base" / "average.pt"), str(data / "test"), str(tmp_path / "plain"),
                            str(data / "lang_char" / "lm3.json"), str(data / "valid")],
                           capture_output=True, text=True, env=env, timeout=300)
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert "tuned for another setup; tuning again" in plain.stdout
    assert "lexicon=none " in tuning.read_text().splitlines()[0]

    # Two-pass decoding with a second model's head (the base model has no auxiliary head of its own).
    second = tmp_path / "exp" / "meta_fomaml" / "meta.pt"
    env.update(RESCORE_N="2", RESCORE_SECOND_MODEL=str(second), RESCORE_AUX_WEIGHTS="0.0 0.5")
    two = subprocess.run(["bash", str(REPO / "recipes" / "TEMPLATE" / "decode_score.sh"),
                          str(tmp_path / "exp" / "base" / "average.pt"), str(data / "test"), str(tmp_path / "two"),
                          str(data / "lang_char" / "lm3.json"), str(data / "valid")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    for nbest in ("nbest", "nbest_dev"):
        assert json.loads((tmp_path / "two" / nbest / "nbest.json").read_text())["setup"]["second_model"] == str(second)
    assert "rescore: %WER" in two.stdout and (tmp_path / "two" / "rescore" / "score" / "wer.json").is_file()


def test_second_run_on_the_same_exp_is_refused(tmp_path):
    (tmp_path / "exp").mkdir()
    with open(tmp_path / "exp" / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a first run holds it
        r = run_recipe("synth", tmp_path, "--stop-stage", "0")
    assert r.returncode == 1 and "another run is using" in r.stderr
    assert not (tmp_path / "data" / ".prep.done").exists()


def test_bad_choice_of_beam_weights_is_refused_before_any_stage(tmp_path):
    r = run_recipe("synth", tmp_path, "--meta-beam", "mine", "--stop-stage", "0")
    assert r.returncode == 1 and "--meta-beam must be own or base" in r.stderr
    assert not (tmp_path / "data").exists()


def test_unknown_option_is_an_error(tmp_path):
    r = run_recipe("synth", tmp_path, "--sepakers", "3")
    assert r.returncode == 1 and "unknown option --sepakers" in r.stderr


def make_user_dir(root: Path, spks: int, utts: int, tag: str) -> Path:
    from speechmeta.data.datadir import write_data_dir

    wav, text, utt2spk = {}, {}, {}
    words = ["ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX"]
    for s in range(spks):
        for u in range(utts):
            utt = f"{tag}{s}-{u:02d}"
            write_wav(root / "audio" / f"{utt}.wav", tone(0.6 + 0.05 * (u % 4), freq=150 + 40 * s + 10 * u, seed=u))
            wav[utt] = f"../audio/{utt}.wav"  # relative: the recipe must rewrite it when copying
            text[utt] = " ".join(words[(u + i) % 6] for i in range(2))
            utt2spk[utt] = f"{tag}{s}"
    write_data_dir(root / tag, wav, text, utt2spk)
    return root / tag


def test_custom_recipe_on_a_users_data_dirs(tmp_path):
    """The data stages (the model stages are the synth test's): copies with rewritten paths, features, splits."""
    train = make_user_dir(tmp_path / "user", 5, 9, "tr")
    test = make_user_dir(tmp_path / "user", 2, 9, "te")
    before = sorted(p.name for p in train.iterdir())
    r = run_recipe("custom", tmp_path, "--train-dir", str(train), "--test-dir", str(test), "--valid-speakers", "2",
                   "--stop-stage", "2", "--tune-seeds", "2 1")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    data = tmp_path / "data"
    from speechmeta.data.datadir import DataDir, validate_data_dir

    assert len(DataDir.load(data / "train").spks) == 3 and len(DataDir.load(data / "valid").spks) == 2
    assert validate_data_dir(data / "test") == [] and (data / "test" / "feats.scp").read_text().count("\n") == 18
    assert (data / "fewshot_test" / "support.k2.seed0").read_text().count("\n") == 2
    # the dev speakers are drawn for tuning as often as --tune-seeds asks, the test speakers as --seeds does
    assert sorted(p.name for p in (data / "fewshot_dev").glob("test.seed*")) == [f"test.seed{s}" for s in "012"]
    assert sorted(p.name for p in (data / "fewshot_test").glob("test.seed*")) == ["test.seed0"]
    assert sorted(p.name for p in train.iterdir()) == before  # the user's dir was not written into


def test_custom_recipe_needs_its_dirs(tmp_path):
    r = run_recipe("custom", tmp_path)
    assert r.returncode == 1 and "give --train-dir DIR and --test-dir DIR" in r.stderr


def test_stage3_pretrains_on_synthetic_voices_reading_the_training_text_then_fine_tunes(tmp_path):
    """--pretrain-conf: eSpeak voices read data/train/text (band-limited), a model is trained on them, and the base
    training starts from it; a rerun of stage 3 reuses the synthetic corpus instead of making it again."""
    train = make_user_dir(tmp_path / "user", 5, 9, "tr")
    test = make_user_dir(tmp_path / "user", 2, 9, "te")
    lines = (train / "text").read_text().splitlines()  # each speaker's sentences their own: a word names the speaker
    names = ["ZERO", "SEVEN", "EIGHT", "NINE", "TEN"]
    (train / "text").write_text("".join(f"{utt} {names[int(utt[2])]} {words}\n"
                                        for utt, words in (line.split(" ", 1) for line in lines)))
    (tmp_path / "pretrain.yaml").write_text(TINY.replace("epochs: 2", "epochs: 1"))
    opts = ["--train-dir", str(train), "--test-dir", str(test), "--valid-speakers", "2", "--stop-stage", "3",
            "--pretrain-conf", str(tmp_path / "pretrain.yaml"), "--synth-speakers", "2", "--synth-utts", "3",
            "--synth-bandwidth", "3000"]
    r = run_recipe("custom", tmp_path, *opts)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    from speechmeta.data.datadir import DataDir

    data, exp = tmp_path / "data", tmp_path / "exp"
    synth = DataDir.load(data / "synth" / "train")
    assert len(synth.spks) == 2 and len(synth.utts) == 6
    train_text = set(DataDir.load(data / "train").text.values())
    assert set(synth.text.values()) <= train_text  # the training speakers' sentences, not valid's or test's
    assert (data / "synth" / "train" / "feats.scp").read_text().count("\n") == 6
    assert json.loads((data / "synth" / "synth_conf.json").read_text())["bandwidth_hz"] == 3000
    assert (exp / "pretrain" / "average.pt").is_file() and (exp / "base" / "average.pt").is_file()
    base_log = (exp / "base" / "log" / "train.log").read_text()
    assert f"initialized from {exp / 'pretrain' / 'average.pt'}" in base_log
    assert "re-initialized" not in base_log  # the pretraining used the same units as the base model

    (exp / ".base.done").unlink()
    made = (data / "synth" / "train" / "feats.scp").stat().st_mtime_ns
    again = run_recipe("custom", tmp_path, *opts, "--stage", "3")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "generated in" not in again.stdout + again.stderr
    assert (data / "synth" / "train" / "feats.scp").stat().st_mtime_ns == made


def test_phone_units_from_a_lexicon_through_all_stages(tmp_path):
    """--units phone: stage 1 builds phone units from --lexicon (written beside units.txt, with the LM, in
    data/lang_phone/), stage 3 trains on them, stage 4 meta-trains, stage 5 decodes and adapts, searching words
    through the lexicon at --beam-size's width, and stage 6 reports. Bad choices of the options stop the run before
    any stage."""
    train = make_user_dir(tmp_path / "user", 5, 9, "tr")
    test = make_user_dir(tmp_path / "user", 2, 9, "te")
    pron = tmp_path / "pron.txt"  # made-up pronunciations: TWO and TOO (not in the text) are homophones
    pron.write_text("ONE W AH1 N\nTWO T UW1\nTOO T UW1\nTHREE TH R IY1\nFOUR F AO1 R\nFIVE F AY1 V\n"
                    "SIX S IH1 K S\n")
    opts = ["--train-dir", str(train), "--test-dir", str(test), "--valid-speakers", "2", "--units", "phone",
            "--lexicon", str(pron), "--beam-size", "4", "--lm-smoothing", "kneser_ney", "--aux-units", "char",
            "--rescore-nbest", "3"]
    for bad, message in [(["--units", "bpe"], "--units must be char or phone"),
                         (["--lexicon", ""], "--units phone needs --lexicon"),
                         (["--beam-size", "0"], "--beam-size must be a positive number"),
                         (["--lm-smoothing", "kn"], "--lm-smoothing must be witten_bell or kneser_ney"),
                         (["--aux-units", "phone"], "--aux-units must differ from --units"),
                         (["--aux-units", ""], "--rescore-nbest needs --aux-units or --rescore-model"),
                         (["--rescore-model", str(tmp_path / "no.pt")], f"--rescore-model {tmp_path}/no.pt: no such")]:
        r = run_recipe("custom", tmp_path, *opts, *bad, "--stop-stage", "0")
        assert r.returncode == 1 and message in r.stderr, r.stderr
        assert not (tmp_path / "data").exists()
    r = run_recipe("custom", tmp_path, *opts, "--meta-algorithms", "fomaml", "--baselines", "none lhuc")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    lang, exp = tmp_path / "data" / "lang_phone", tmp_path / "exp"
    assert "units (phones of" in r.stdout and "0 word(s) outside the lexicon" in r.stdout
    assert (lang / "units.txt").read_text().split()[::2] == ["<blk>", "<unk>", "<space>", "AH", "AO", "AY", "F",
                                                            "IH", "IY", "K", "N", "R", "S", "T", "TH", "UW", "V", "W"]
    assert json.loads((lang / "lm3.json").read_text())["smoothing"] == "kneser_ney" and (lang / "lexicon.txt").is_file()
    tuning = (exp / "base" / "tune_valid" / "beam_tuning.txt").read_text().splitlines()[0]
    assert tuning.endswith(" beam=4") and f"lm={lang / 'lm3.json'} " in tuning
    hyps = [line.split()[1:] for line in (exp / "base" / "decode_test" / "beam" / "hyp.txt").read_text().splitlines()]
    assert len(hyps) == 18 and {w for words in hyps for w in words} <= {"ONE", "TWO", "TOO", "THREE", "FOUR", "FIVE",
                                                                         "SIX"}  # lexicon words only
    # --aux-units char: a character head beside the phones, and stage 5's second pass rescores both heads' lists
    from speechmeta.checkpoint import load_checkpoint

    aux = load_checkpoint(exp / "base" / "average.pt")["aux_tokenizer"]
    assert "lexicon" not in aux and "A" not in aux["units"] and "E" in aux["units"]  # characters of the text
    rescored = (exp / "base" / "decode_test" / "rescore" / "hyp.txt").read_text().splitlines()
    assert len(rescored) == 18 and {w for line in rescored for w in line.split()[1:]} <= {
        "ONE", "TWO", "TOO", "THREE", "FOUR", "FIVE", "SIX"}
    assert "rescore: %WER" in r.stdout
    report = json.loads((exp / "report" / "report.json").read_text())
    assert {(r["method"], r["k"]) for r in report["results"]} == {("none", 0), ("lhuc", 2), ("fomaml", 0),
                                                                   ("fomaml", 2)}


def test_meta_speakers_are_held_out_of_base_training_and_meta_train_it(tmp_path):
    """--meta-speakers N: stage 3 trains the base model without N of the training speakers, and stage 4 draws every
    meta-training task from those N; stage 4 refuses a count that does not match the split stage 3 made."""
    train = make_user_dir(tmp_path / "user", 6, 9, "tr")
    test = make_user_dir(tmp_path / "user", 2, 9, "te")
    def opts(meta_speakers: str) -> list[str]:
        return ["--train-dir", str(train), "--test-dir", str(test), "--valid-speakers", "2", "--meta-speakers",
                meta_speakers, "--meta-algorithms", "fomaml", "--stop-stage", "4"]

    r = run_recipe("custom", tmp_path, *opts("2"))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    from speechmeta.data.datadir import DataDir

    data, exp = tmp_path / "data", tmp_path / "exp"
    train_spks = set(DataDir.load(data / "train").spks)
    base_spks, meta_spks = set(DataDir.load(data / "train_base").spks), set(DataDir.load(data / "train_meta").spks)
    assert len(meta_spks) == 2 and base_spks == train_spks - meta_spks and len(base_spks) == 2
    assert "18 training" in (exp / "base" / "log" / "train.log").read_text()  # 2 speakers x 9 utterances
    meta_log = (exp / "meta_fomaml" / "log" / "meta-train.log").read_text()
    assert re.search(r", 2 speakers \(0 skipped\)", meta_log), meta_log

    (exp / ".meta.done").unlink()
    again = run_recipe("custom", tmp_path, *opts("3"), "--stage", "4")
    assert again.returncode == 1 and "--meta-speakers 3, but" in again.stderr
    bad = run_recipe("custom", tmp_path, *opts("two"))
    assert bad.returncode == 1 and "--meta-speakers must be a number" in bad.stderr


def test_librispeech_recipe_data_stages_on_a_fixture(tmp_path):
    root = tmp_path / "corpus" / "LibriSpeech"
    for subset, spks in (("train-clean-100", ("19", "26", "27")), ("dev-clean", ("84", "174")),
                         ("test-clean", ("121", "237"))):
        for spk in spks:
            folder = root / subset / spk / "100"
            lines = []
            for i in range(8):
                utt = f"{spk}-100-{i:04d}"
                write_wav(folder / f"{utt}.flac", tone(0.5, freq=200 + 7 * i))
                lines.append(f"{utt} HELLO THERE NUMBER {i}")
            (folder / f"{spk}-100.trans.txt").write_text("\n".join(lines) + "\n")
    (root / "SPEAKERS.TXT").write_text("; ID | SEX | SUBSET | MINUTES | NAME\n19 | F | train-clean-100 | 1 | A\n")
    r = run_recipe("librispeech", tmp_path, "--corpus-dir", str(tmp_path / "corpus"), "--download", "false",
                   "--stop-stage", "2")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    data = tmp_path / "data"
    assert (data / "train" / "feats.scp").read_text().count("\n") == 24
    assert (data / "fewshot_test" / "support.k2.seed0").read_text().count("\n") == 2
    assert not (tmp_path / "exp" / ".base.done").exists()


@pytest.mark.parametrize("recipe", ["synth", "fsdd", "speechocean762", "custom", "librispeech"])
def test_recipe_wrappers_are_thin(recipe):
    lines = (REPO / "recipes" / recipe / "run.sh").read_text().splitlines()
    assert len(lines) <= 40 and any("TEMPLATE/run.sh" in line for line in lines)


def test_synth_quick_presets_yield_to_options_given():
    def options(*args: str) -> dict[str, str]:
        out = subprocess.run(["bash", str(REPO / "recipes" / "synth" / "run.sh"), *args, "--help"],
                             capture_output=True, text=True, env=venv_env(), timeout=60)
        assert out.returncode == 0, out.stderr
        return dict(re.findall(r"--(\S+) \(current: (.*)\)", out.stdout))

    assert options()["tune-steps"] == "1 3 10" and options()["exp"] == "exp"
    quick = options("--quick", "true", "--tune-steps", "2 5 10")
    assert quick["tune-steps"] == "2 5 10" and quick["exp"] == "exp_quick" and quick["speakers"] == "32"
    assert options("--quick=true")["tune-steps"] == "2 5 10"


@pytest.mark.parametrize("dev_speakers", ["", "george"])
def test_fsdd_data_stages_hold_out_test_and_dev_speakers_and_write_the_lexicon(tmp_path, dev_speakers):
    rec = tmp_path / "corpus" / "recordings"
    speakers = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]
    for spk in speakers:
        for digit in (0, 1):
            for index in range(7):
                write_wav(rec / f"{digit}_{spk}_{index}.wav", tone(0.3, 8000), 8000)
    env = venv_env()
    out = subprocess.run(["bash", str(REPO / "recipes" / "fsdd" / "run.sh"), "--stage", "0", "--stop-stage", "1",
                          "--corpus-dir", str(tmp_path / "corpus"), "--data", str(tmp_path / "data"), "--exp",
                          str(tmp_path / "exp"), "--dev-speakers", dev_speakers],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]

    def spks(part: str) -> list[str]:
        return [line.split()[0] for line in (tmp_path / "data" / part / "spk2utt").read_text().splitlines()]

    train = [s for s in speakers if s not in ("theo", "yweweler", dev_speakers)]
    assert spks("test") == ["theo", "yweweler"] and spks("train") == train and spks("valid") == train
    assert spks("dev") == (["george"] if dev_speakers else train)  # else: the training speakers' valid recordings
    valid_utts = (tmp_path / "data" / "valid" / "text").read_text().split("\n")
    assert all(line.split()[0].endswith(("-00", "-01", "-02", "-03", "-04")) for line in valid_utts if line)
    assert not set((tmp_path / "data" / "train" / "text").read_text().split()) & {"george-0-00", "theo-0-05"}
    words = tmp_path / "data" / "lang_char" / "words.txt"  # stage 1: the training text's words, the beam's lexicon
    assert words.read_text().split("\n") == ["ONE", "ZERO", ""]
