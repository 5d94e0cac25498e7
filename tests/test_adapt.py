"""Adapting to a speaker: profiles round-trip and refuse other models, bad requests give clear errors, unsupervised
adaptation runs, adapt-eval scores the same utterances for every method and the report keeps its schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_base

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data_prep"))
import splits  # noqa: E402

from speechmeta.adapt import adapt_to_speaker, apply_profile, load_adapter  # noqa: E402
from speechmeta.adapt_eval import evaluate, load_or_tune, read_lists, tune  # noqa: E402
from speechmeta.cli import main  # noqa: E402
from speechmeta.config import load_config  # noqa: E402
from speechmeta.data.datadir import DataDir, DataDirError, write_data_dir  # noqa: E402
from speechmeta.decode import BeamOptions  # noqa: E402
from speechmeta.meta_train import meta_train  # noqa: E402
from speechmeta.profile import ProfileError, file_sha256, load_profile, save_profile  # noqa: E402
from speechmeta.report import write_report  # noqa: E402
from speechmeta.train import load_model  # noqa: E402


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    out = tmp_path_factory.mktemp("adapt")
    tiny_base(out, 5, 2, 8, ["model.dropout=0.0"])
    splits.write_fewshot(out / "test", out / "fewshot", [1, 2], [0], min_test=3)
    meta_cfg = load_config(overrides=["meta.meta_steps=1", "meta.speakers_per_batch=2", "meta.shots=2",
                                      "meta.query=2", "meta.inner_steps=2", "meta.eval_every=1", "meta.eval_tasks=1",
                                      "meta.device=cpu"])
    meta_train(meta_cfg, out / "base" / "average.pt", out / "train", out / "train", out / "meta", progress=False)
    return out


def test_profile_round_trip_and_decode_with_it(exp, tmp_path):
    base = exp / "base" / "average.pt"
    spk = DataDir.load(exp / "test").spks[0]
    info = adapt_to_speaker(base, exp / "test", spk, tmp_path / "p.safetensors", k=2, method="lhuc", steps=2,
                            lr=5.0, device="cpu")
    tensors, sha, saved = load_profile(tmp_path / "p.safetensors")
    assert saved == json.loads(json.dumps(info)) and len(saved["utts"]) == 2 and saved["method"] == "lhuc"
    assert all(".speaker.lhuc." in k for k in tensors) and any(v.abs().sum() > 0 for v in tensors.values())
    model, *_ = load_model(base)
    apply_profile(model, base, tmp_path / "p.safetensors")
    loaded = dict(model.named_parameters())
    for k, v in tensors.items():
        assert torch.equal(loaded[k].detach(), v)
    assert main(["decode", "--model", str(base), "--data", str(exp / "test"), "--out", str(tmp_path / "dec"),
                 "--profile", str(tmp_path / "p.safetensors")]) == 0
    assert (tmp_path / "dec" / "hyp.txt").read_text().count("\n") == len(DataDir.load(exp / "test").utts)


def test_profile_refused_on_another_model_or_with_wrong_tensors(exp, tmp_path):
    base = exp / "base" / "average.pt"
    spk = DataDir.load(exp / "test").spks[0]
    adapt_to_speaker(base, exp / "test", spk, tmp_path / "p.safetensors", k=1, method="lhuc", steps=1, lr=1.0,
                     device="cpu")
    model, *_ = load_model(exp / "meta" / "meta.pt")
    with pytest.raises(ProfileError, match="adapted from a model with SHA-256"):
        apply_profile(model, exp / "meta" / "meta.pt", tmp_path / "p.safetensors")
    tensors, sha, info = load_profile(tmp_path / "p.safetensors")
    missing = dict(list(tensors.items())[1:])
    save_profile(tmp_path / "missing.safetensors", missing, sha, info)
    with pytest.raises(ProfileError, match="missing"):
        apply_profile(load_model(base)[0], base, tmp_path / "missing.safetensors")
    save_profile(tmp_path / "extra.safetensors", {**tensors, "blocks.0.extra": torch.zeros(2)}, sha, info)
    with pytest.raises(ProfileError, match="extra"):
        apply_profile(load_model(base)[0], base, tmp_path / "extra.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a profile")
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile(tmp_path / "junk.safetensors")


def test_bad_requests_name_the_problem(exp, tmp_path, capsys):
    base = str(exp / "base" / "average.pt")
    spk = DataDir.load(exp / "test").spks[0]
    common = ["adapt", "--model", base, "--data", str(exp / "test"), "--out", str(tmp_path / "p.safetensors"),
              "--method", "lhuc", "--steps", "1", "--lr", "1", "--device", "cpu"]
    assert main([*common, "--spk", spk, "--k", "100"]) == 1
    assert f"speaker '{spk}' has 8 utterance(s)" in capsys.readouterr().err
    assert main([*common, "--spk", "nobody", "--k", "1"]) == 1
    assert "speaker 'nobody' is not in" in capsys.readouterr().err
    assert main(["adapt", "--model", base, "--data", str(exp / "test"), "--out", str(tmp_path / "p"), "--spk", spk,
                 "--k", "1"]) == 1
    assert "holds no meta-learned adaptation rule" in capsys.readouterr().err
    assert not (tmp_path / "p.safetensors").exists()


def test_meta_rule_and_unsupervised_adaptation(exp, tmp_path):
    meta = exp / "meta" / "meta.pt"
    ad = load_adapter(meta, "auto", device="cpu")
    assert ad.method == "fomaml" and ad.param_set == "lhuc" and ad.steps == 2
    spk = DataDir.load(exp / "test").spks[1]
    info = adapt_to_speaker(meta, exp / "test", spk, tmp_path / "u.safetensors", k=3, unsupervised=True,
                            min_confidence=0.0, device="cpu")
    assert info["unsupervised"] and 1 <= info["k"] <= 3 and set(info["confidence"]) >= set(info["utts"])
    with pytest.raises(ValueError, match="no utterance reached confidence"):
        adapt_to_speaker(meta, exp / "test", spk, tmp_path / "v.safetensors", k=3, unsupervised=True,
                         min_confidence=1.01, device="cpu")


def test_adapt_eval_same_utterances_and_report_schema(exp, tmp_path):
    base = exp / "base" / "average.pt"
    outs = []
    for method, steps, lr in (("none", None, None), ("lhuc", 2, 5.0), ("meta", None, None)):
        model = exp / "meta" / "meta.pt" if method == "meta" else base
        ad = load_adapter(model, method, steps, lr, device="cpu")
        out = tmp_path / ad.method
        evaluate(ad, exp / "test", exp / "fewshot", [1, 2], [0], out, progress=False)
        outs.append(out)
    utts = {p.read_text() and tuple(line.split()[0] for line in p.read_text().splitlines())
            for p in tmp_path.glob("*/k*/seed0/ref.txt")}
    assert len(utts) == 1  # every method, every K: the same test utterances
    report = write_report("synthtiny", base, outs, tmp_path / "report")
    assert set(report) == {"corpus", "base_model_sha256", "results", "per_speaker"}
    assert [(r["method"], r["k"]) for r in report["results"]] == [("none", 0), ("lhuc", 1), ("lhuc", 2),
                                                                    ("fomaml", 0), ("fomaml", 1), ("fomaml", 2)]
    for r in report["results"]:
        assert set(r) == {"method", "k", "wer", "cer", "wer_ci95", "speakers", "words", "adapt_seconds_per_speaker"}
        assert 0 <= r["wer_ci95"][0] <= r["wer"] <= r["wer_ci95"][1] and r["speakers"] == 2
    assert all(set(p) == {"spk", "method", "k", "wer", "words"} for p in report["per_speaker"])
    assert json.loads((tmp_path / "report" / "report.json").read_text()) == report
    assert (tmp_path / "report" / "wer_vs_k.png").read_bytes()[:4] == b"\x89PNG"
    assert "| lhuc | 2 |" in (tmp_path / "report" / "report.md").read_text()
    # cross-validation folds pooled in one report: one base model per fold, their hashes joined
    folds = write_report("synthtiny", [base, exp / "meta" / "meta.pt"], outs, tmp_path / "folds")
    assert folds["base_model_sha256"] == f"{report['base_model_sha256']},{file_sha256(exp / 'meta' / 'meta.pt')}"


def test_tune_picks_from_the_grid(exp):
    result = tune(exp / "base" / "average.pt", "lhuc", exp / "test", exp / "fewshot", [1], [0], [1.0, 5.0], [0, 1, 2],
                  device="cpu", progress=False)
    assert len(result["grid"]) == 6 and result["best"] in [{"steps": r["steps"], "lr": r["lr"]}
                                                           for r in result["grid"]]
    best = min(r["wer"] for r in result["grid"])
    assert [r for r in result["grid"] if r["wer"] == best][0]["wer"] == best
    none = [r["wer"] for r in result["grid"] if r["steps"] == 0]
    assert none[0] == none[1]  # zero steps is the unadapted model whatever the rate
    by_cer = tune(exp / "base" / "average.pt", "lhuc", exp / "test", exp / "fewshot", [1], [0], [1.0, 5.0], [0, 1, 2],
                  device="cpu", progress=False, metric="cer")
    assert [r["wer"] for r in by_cer["grid"]] == [r["wer"] for r in result["grid"]]  # the same decodings
    assert all(0 <= r["cer"] for r in by_cer["grid"]) and by_cer["settings"]["metric"] == "cer"
    lowest = min(by_cer["grid"], key=lambda r: (r["cer"], r["steps"]))
    assert by_cer["best"] == {"steps": lowest["steps"], "lr": lowest["lr"]}
    assert "metric" not in result["settings"]  # WER tunings keep the settings they were kept with before
    with pytest.raises(ValueError, match="wer or cer, not 'ser'"):
        tune(exp / "base" / "average.pt", "lhuc", exp / "test", exp / "fewshot", [1], [0], [1.0], [0], metric="ser")


def test_tuning_over_several_support_draws_sums_their_errors(exp, tmp_path):
    splits.write_fewshot(exp / "test", tmp_path / "fewshot", [1], [0, 1], min_test=3)
    args = (exp / "base" / "average.pt", "lhuc", exp / "test", tmp_path / "fewshot", [1])
    kw = dict(lrs=[5.0], milestones=[0, 1, 2], device="cpu", progress=False)
    both, first, second = (tune(*args, seeds, **kw) for seeds in ([0, 1], [0], [1]))
    assert read_lists(tmp_path / "fewshot" / "support.k1.seed0") != read_lists(
        tmp_path / "fewshot" / "support.k1.seed1")  # two different draws
    for b, f, s in zip(both["grid"], first["grid"], second["grid"], strict=True):
        assert b["words"] == f["words"] + s["words"]
        assert round(b["wer"] * b["words"]) == round(f["wer"] * f["words"]) + round(s["wer"] * s["words"])
    assert both["seeds"] == [0, 1] and both["settings"]["seeds"] == [0, 1] and first["settings"]["seed"] == 0


def test_tuning_is_kept_and_redone_when_its_settings_change(exp, tmp_path):
    kwargs = dict(model_path=exp / "base" / "average.pt", method="lhuc", data_dir=exp / "test",
                  fewshot=exp / "fewshot", shots=[1], seeds=[0], lrs=[5.0], milestones=[0, 1], device="cpu",
                  progress=False)
    path = tmp_path / "tune.json"
    first = load_or_tune(path, max_test_utts=1, **kwargs)
    assert first["settings"]["max_test_utts"] == 1
    path.write_text(path.read_text().replace('"method": "lhuc"', '"method": "kept"'))
    assert load_or_tune(path, max_test_utts=1, **kwargs)["method"] == "kept"  # same settings: reused
    again = load_or_tune(path, max_test_utts=3, **kwargs)  # more dev utterances: tuned again
    assert again["method"] == "lhuc" and again["settings"]["max_test_utts"] == 3
    assert json.loads(path.read_text()) == again
    path.write_text(path.read_text().replace('"method": "lhuc"', '"method": "kept"'))
    other = load_or_tune(path, max_test_utts=3, **{**kwargs, "model_path": exp / "meta" / "meta.pt"})
    assert other["method"] == "lhuc" and other["settings"]["model_sha256"] == file_sha256(exp / "meta" / "meta.pt")
    path.write_text(path.read_text().replace('"method": "lhuc"', '"method": "kept"'))
    by_cer = load_or_tune(path, max_test_utts=3, metric="cer", **{**kwargs, "model_path": exp / "meta" / "meta.pt"})
    assert by_cer["method"] == "lhuc" and by_cer["settings"]["metric"] == "cer"  # another metric: tuned again


def test_adapt_takes_the_schedule_tuned_on_dev_speakers(exp, tmp_path, capsys, caplog):
    base = exp / "base" / "average.pt"
    tuned = tmp_path / "tune" / "lhuc.json"
    load_or_tune(tuned, model_path=base, method="lhuc", data_dir=exp / "test", fewshot=exp / "fewshot", shots=[1],
                 seeds=[0], lrs=[7.0], milestones=[2], device="cpu", progress=False, max_test_utts=1)
    spk = DataDir.load(exp / "test").spks[0]
    common = ["adapt", "--data", str(exp / "test"), "--spk", spk, "--k", "1", "--device", "cpu", "--tuned", str(tuned)]
    assert main([*common, "--model", str(base), "--out", str(tmp_path / "p.safetensors")]) == 0
    _, _, info = load_profile(tmp_path / "p.safetensors")
    lrs = info["lrs"].values() if "mean" not in info["lrs"] else [info["lrs"]["mean"]]
    assert info["method"] == "lhuc" and info["steps"] == 2 and all(abs(v - 7.0) < 1e-6 for v in lrs)
    assert main([*common, "--model", str(exp / "meta" / "meta.pt"), "--out", str(tmp_path / "q.safetensors")]) == 1
    assert "another model file" in capsys.readouterr().err
    assert main([*common, "--model", str(base), "--out", str(tmp_path / "q.safetensors"), "--steps", "3"]) == 1
    assert "either --tuned or --steps/--lr" in capsys.readouterr().err
    assert main([*common, "--model", str(base), "--out", str(tmp_path / "q.safetensors"), "--method", "adapter"]) == 1
    assert "tuned method 'lhuc', not 'adapter'" in capsys.readouterr().err
    assert not (tmp_path / "q.safetensors").exists()
    assert main([*common, "--model", str(base), "--out", str(tmp_path / "k2.safetensors"), "--k", "2"]) == 0
    assert "was tuned for K=[1], not K=2" in caplog.text  # a schedule of another K: said, not refused


def test_transcribe_files(exp, tmp_path, capsys):
    wav = sorted((exp / "wav").rglob("*.wav"))[0]
    assert main(["transcribe", "--model", str(exp / "base" / "average.pt"), str(wav)]) == 0
    assert capsys.readouterr().out.startswith(str(wav))
    import numpy as np
    import soundfile as sf

    sf.write(tmp_path / "short.wav", np.zeros(400, dtype=np.float32), 16000)
    assert main(["transcribe", "--model", str(exp / "base" / "average.pt"), str(tmp_path / "short.wav")]) == 1
    assert "too short to transcribe" in capsys.readouterr().err
    lexicon = tmp_path / "words.txt"
    lexicon.write_text("A\nTHE\n")
    for beam, rc in (("1", 0), ("0", 1)):
        assert main(["transcribe", "--model", str(exp / "base" / "average.pt"), "--lexicon", str(lexicon), "--beam",
                     beam, str(wav)]) == rc
    assert "beam size must be at least 1, not 0" in capsys.readouterr().err


def test_tuning_scores_dev_utterances_spread_over_the_list():
    from speechmeta.adapt_eval import spread

    utts = [f"spk-{digit}-{i:02d}" for digit in range(10) for i in range(50)]  # FSDD-like sorted ids
    chosen = spread(utts, 20)
    assert len(chosen) == 20 == len(set(chosen)) and {u.split("-")[1] for u in chosen} == {str(d) for d in range(10)}
    assert spread(utts[:5], 20) == utts[:5]


def test_adapt_eval_beam_matches_decode_and_redoes_other_decodings(exp, tmp_path):
    base = exp / "base" / "average.pt"
    lm, lexicon = tmp_path / "lm.json", tmp_path / "words.txt"
    assert main(["train-lm", "--text", str(exp / "train" / "text"), "--order", "2", "--out", str(lm)]) == 0
    lexicon.write_text("\n".join(sorted({w for line in (exp / "train" / "text").read_text().splitlines()
                                         for w in line.split()[1:]})) + "\n")
    beam = BeamOptions(lm, lexicon, lm_weight=0.3, word_bonus=1.0, beam_size=4)
    ad = load_adapter(base, "none", device="cpu")
    out = tmp_path / "none"
    [summary] = evaluate(ad, exp / "test", exp / "fewshot", [1], [0], out, progress=False, beam=beam)
    assert summary["decoding"] == beam.describe() and summary["decoding"]["method"] == "beam"
    assert main(["decode", "--model", str(base), "--data", str(exp / "test"), "--out", str(tmp_path / "dec"),
                 "--method", "beam", "--beam", "4", "--lm", str(lm), "--lm-weight", "0.3", "--word-bonus", "1",
                 "--lexicon", str(lexicon)]) == 0
    decoded = dict(line.partition(" ")[::2] for line in (tmp_path / "dec" / "hyp.txt").read_text().splitlines())
    evaluated = dict(line.partition(" ")[::2] for line in (out / "k0" / "seed0" / "hyp.txt").read_text().splitlines())
    assert evaluated and all(decoded[u] == h for u, h in evaluated.items())
    words = set(lexicon.read_text().split())
    assert all(set(h.split()) <= words for h in evaluated.values())  # the lexicon was used
    # kept when decoded the same way, done again (greedy) when not
    (out / "k0" / "seed0" / "hyp.txt").write_text("kept\n")
    evaluate(ad, exp / "test", exp / "fewshot", [1], [0], out, progress=False, beam=beam)
    assert (out / "k0" / "seed0" / "hyp.txt").read_text() == "kept\n"
    [greedy] = evaluate(ad, exp / "test", exp / "fewshot", [1], [0], out, progress=False)
    assert greedy["decoding"] == {"method": "greedy"} and (out / "k0" / "seed0" / "hyp.txt").read_text() != "kept\n"
    # and done again for another model (a meta-trained one: its own K=0 row)
    (out / "k0" / "seed0" / "hyp.txt").write_text("kept\n")
    evaluate(load_adapter(exp / "meta" / "meta.pt", "none", device="cpu"), exp / "test", exp / "fewshot", [1], [0],
             out, progress=False)
    assert (out / "k0" / "seed0" / "hyp.txt").read_text() != "kept\n"


def test_per_speaker_cmvn_travels_in_the_profile_to_transcribe(exp, tmp_path):
    from speechmeta.data.cmvn import load_cmvn
    from speechmeta.train import train
    from speechmeta.transcribe import transcribe

    cfg = load_config(overrides=["model.size=tiny", "train.epochs=1", "train.average_last=1", "model.dropout=0.0",
                                 "cmvn=speaker"])
    train(cfg, exp / "train", exp / "train", exp / "units.txt", tmp_path / "spk", progress=False)
    model = tmp_path / "spk" / "average.pt"
    test = DataDir.load(exp / "test")
    spk = test.spks[0]
    info = adapt_to_speaker(model, exp / "test", spk, tmp_path / "p.safetensors", k=2, method="lhuc", steps=1,
                            lr=5.0, device="cpu")
    np.testing.assert_allclose(np.array(info["cmvn_stats"]), load_cmvn(exp / "test" / "cmvn.npz")[1][spk])
    utts = test.spk2utt[spk]
    wavs = [test.audio(u).path for u in utts]
    # with the profile: the speaker's statistics, as `decode --profile` on the data dir uses them
    assert main(["decode", "--model", str(model), "--data", str(exp / "test"), "--out", str(tmp_path / "dec"),
                 "--profile", str(tmp_path / "p.safetensors")]) == 0
    decoded = dict(line.partition(" ")[::2] for line in (tmp_path / "dec" / "hyp.txt").read_text().splitlines())
    texts = [t for _, t in transcribe(model, wavs, tmp_path / "p.safetensors")]
    assert texts == [decoded[u] for u in utts] and any(texts)
    # without one: pooled over the files given (here all of the speaker's: the data dir's statistics again), and
    # other than per-file statistics
    pooled = [t for _, t in transcribe(model, wavs)]
    assert main(["decode", "--model", str(model), "--data", str(exp / "test"), "--out", str(tmp_path / "plain")]) == 0
    plain = dict(line.partition(" ")[::2] for line in (tmp_path / "plain" / "hyp.txt").read_text().splitlines())
    assert pooled == [plain[u] for u in utts]
    assert [transcribe(model, [w])[0][1] for w in wavs] != pooled


def test_tuning_per_k_and_results_redone_for_another_schedule(exp, tmp_path):
    out = tmp_path / "lhuc"
    assert main(["adapt-eval", "--model", str(exp / "base" / "average.pt"), "--method", "lhuc", "--data",
                 str(exp / "test"), "--fewshot", str(exp / "fewshot"), "--shots", "1", "2", "--out", str(out),
                 "--tune-data", str(exp / "test"), "--tune-fewshot", str(exp / "fewshot"), "--tune-lrs", "1", "5",
                 "--tune-steps", "1", "2", "--tune-max-utts", "2", "--tune-per-k", "--device", "cpu",
                 "--no-progress"]) == 0
    for k in (1, 2):
        tuned = json.loads((out / f"tune.k{k}.json").read_text())
        assert tuned["shots"] == [k] and len(tuned["grid"]) == 4
        summary = json.loads((out / f"k{k}" / "seed0" / "summary.json").read_text())
        assert summary["steps"] == tuned["best"]["steps"] and summary["lr_mean"] == tuned["best"]["lr"]
    assert not (out / "tune.json").exists()
    # a kept result made with another schedule is done again
    (out / "k1" / "seed0" / "hyp.txt").write_text("kept\n")
    ad = load_adapter(exp / "base" / "average.pt", "lhuc", 3, 0.5, device="cpu")
    [again] = evaluate(ad, exp / "test", exp / "fewshot", [1], [0], out, progress=False)
    assert (again["steps"], again["lr_mean"]) == (3, 0.5) and (out / "k1" / "seed0" / "hyp.txt").read_text() != "kept\n"


def test_unreadable_audio_hint_fits_the_command(exp, tmp_path, capsys):
    model = str(exp / "base" / "average.pt")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not audio")
    assert main(["transcribe", "--model", model, str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: not readable audio" in err and "skip-bad" not in err  # transcribe has no such option
    # adapt computes a data dir's features itself: the way past is compute-feats --skip-bad
    test = DataDir.load(exp / "test")
    spk = test.spks[0]
    wav = {u: str(test.audio(u).path) for u in test.utts}
    wav[test.spk2utt[spk][0]] = str(bad)
    write_data_dir(tmp_path / "data", wav, test.text, test.utt2spk)
    assert main(["adapt", "--model", model, "--method", "lhuc", "--steps", "1", "--lr", "1", "--data",
                 str(tmp_path / "data"), "--spk", spk, "--k", "1", "--out", str(tmp_path / "p.safetensors"),
                 "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: not readable audio" in err
    assert f"speechmeta compute-feats {tmp_path / 'data'} --skip-bad computes the features of the others" in err
    assert not (tmp_path / "p.safetensors").exists()


def test_transcribe_cuts_a_long_file_at_its_pauses(exp, tmp_path):
    import soundfile as sf

    from speechmeta.data.segment import pause_segments
    from speechmeta.transcribe import transcribe

    model = exp / "base" / "average.pt"
    wavs = sorted((exp / "wav").rglob("*.wav"))[:3]
    gap = np.zeros(8000)
    x = np.concatenate([gap, *(np.concatenate([sf.read(w)[0], gap]) for w in wavs)])
    sf.write(tmp_path / "long.wav", x, 16000)
    for margin in (0.2, 0.05):
        pieces = pause_segments(x, 16000, margin=margin)
        assert len(pieces) == 3
        for i, (a, b) in enumerate(pieces):
            sf.write(tmp_path / f"piece{i}.wav", x[a:b], 16000)
        alone = [t for _, t in transcribe(model, [tmp_path / f"piece{i}.wav" for i in range(3)])]
        assert any(alone)
        ((_, cut),) = transcribe(model, [tmp_path / "long.wav"], segment_over=0, segment_margin=margin)
        assert cut == " ".join(t for t in alone if t)  # each piece decoded alone, with its own CMVN, in order
    ((_, whole),) = transcribe(model, [tmp_path / "long.wav"], segment_over=float("inf"))
    ((_, default),) = transcribe(model, [tmp_path / "long.wav"])  # shorter than 30 s: one pass
    assert default == whole


def test_untranscribed_data_dir_adapts_unsupervised_and_decodes(exp, tmp_path, capsys):
    meta = exp / "meta" / "meta.pt"
    test = DataDir.load(exp / "test")
    spk = test.spks[1]
    utts = test.spk2utt[spk]
    d = tmp_path / "untranscribed"
    write_data_dir(d, {u: str(test.audio(u).path) for u in utts}, None, {u: spk for u in utts})
    assert not (d / "text").exists()
    info = adapt_to_speaker(meta, d, spk, tmp_path / "u.safetensors", k=3, unsupervised=True, min_confidence=0.0,
                            device="cpu")  # computes the features too: no transcripts needed for either
    same = adapt_to_speaker(meta, exp / "test", spk, tmp_path / "t.safetensors", k=3, unsupervised=True,
                            min_confidence=0.0, device="cpu")  # the same utterances, transcripts there but unused
    assert info["utts"] == same["utts"] and info["confidence"] == pytest.approx(same["confidence"])
    with pytest.raises(DataDirError, match="without transcripts a data dir serves compute-feats, decode and adapt "
                                           "--unsupervised only"):
        adapt_to_speaker(meta, d, spk, tmp_path / "s.safetensors", k=3, method="lhuc", steps=1, lr=1.0,
                         device="cpu")
    assert main(["decode", "--model", str(meta), "--data", str(d), "--out", str(tmp_path / "dec"), "--profile",
                 str(tmp_path / "u.safetensors")]) == 0
    assert len((tmp_path / "dec" / "hyp.txt").read_text().splitlines()) == len(utts)
    assert not (tmp_path / "dec" / "ref.txt").exists()
    capsys.readouterr()
    assert main(["validate-data", str(d)]) == 1
    assert main(["validate-data", str(d), "--untranscribed"]) == 0
    assert "text: error: required file missing" in capsys.readouterr().out


def test_adapt_takes_the_only_speaker_and_an_spk2utt_line(exp, tmp_path, capsys):
    base = str(exp / "base" / "average.pt")
    test = DataDir.load(exp / "test")
    spk = test.spks[0]
    utts = test.spk2utt[spk]
    one = tmp_path / "one"
    write_data_dir(one, {u: str(test.audio(u).path) for u in utts}, {u: test.text[u] for u in utts},
                   {u: spk for u in utts})
    common = ["adapt", "--model", base, "--method", "lhuc", "--steps", "1", "--lr", "1", "--device", "cpu"]
    (tmp_path / "support").write_text(f"{spk} {utts[1]} {utts[0]}\n")  # an spk2utt line
    assert main([*common, "--data", str(one), "--support-list", str(tmp_path / "support"), "--out",
                 str(tmp_path / "p.safetensors")]) == 0
    assert f"profile of speaker {spk} from 2 utterance(s)" in capsys.readouterr().out
    _, _, info = load_profile(tmp_path / "p.safetensors")
    assert info["spk"] == spk and info["utts"] == [utts[1], utts[0]]
    assert main([*common, "--data", str(exp / "test"), "--k", "1", "--out", str(tmp_path / "q.safetensors")]) == 1
    assert f"give --spk: {exp / 'test'} holds {len(test.spks)} speakers ({', '.join(test.spks)})" in \
        capsys.readouterr().err
