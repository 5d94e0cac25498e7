"""Training: a tiny model overfits 4 synthetic utterances; resume is bit-for-bit; bad batches are skipped;
checkpoints load only tensors; --init-from with another vocabulary re-initializes the output layer only."""

from __future__ import annotations

import logging
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data_prep"))
import synth  # noqa: E402

from speechmeta.checkpoint import CheckpointError, load_checkpoint  # noqa: E402
from speechmeta.config import load_config  # noqa: E402
from speechmeta.data.compute_feats import compute_feats  # noqa: E402
from speechmeta.data.datadir import DataDir  # noqa: E402
from speechmeta.data.tokenizer import CharTokenizer  # noqa: E402
from speechmeta.train import evaluate, load_model, train  # noqa: E402

TINY = ["model.size=tiny", "train.average_last=1", "train.warmup_steps=10"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two synthetic speakers: train/ with 2 x 6 utterances; units from its text."""
    out = tmp_path_factory.mktemp("corpus")
    synth.prepare(out, num_speakers=2, num_test=0, utts_per_spk=6, dev_utts=0, seed=0, nj=2, progress=False)
    compute_feats(out / "train", progress=False)
    CharTokenizer.build(DataDir.load(out / "train").text.values()).save(out / "units.txt")
    return out


def subset4(corpus: Path, tmp_path: Path) -> Path:
    from speechmeta.data.subset import subset_data_dir

    data = DataDir.load(corpus / "train")
    sub = subset_data_dir(corpus / "train", tmp_path / "four", data.spks)
    keep = set(data.spk2utt["spk001"][:2] + data.spk2utt["spk002"][:2])
    for name in ("text", "utt2spk", "wav.scp", "feats.scp", "utt2num_frames"):
        lines = [line for line in (sub / name).read_text().splitlines() if line.split()[0] in keep]
        (sub / name).write_text("".join(line + "\n" for line in lines))
    (sub / "spk2utt").write_text("".join(f"{s} {' '.join(sorted(u for u in keep if u.startswith(s)))}\n"
                                         for s in data.spks))
    return sub


def test_tiny_model_overfits_four_utterances(corpus, tmp_path):
    four = subset4(corpus, tmp_path)
    cfg = load_config(overrides=TINY + ["model.dropout=0.0", "train.epochs=80", "train.lr=3e-3",
                                        "train.specaug_from_epoch=1000", "train.max_frames=100000"])
    result = train(cfg, four, four, corpus / "units.txt", tmp_path / "exp", progress=False)
    assert result["valid_wer"] == 0.0 and result["valid_cer"] == 0.0, result
    model, tokenizer, cfg2, _ = load_model(tmp_path / "exp" / "average.pt")
    from speechmeta.data.dataset import UttData

    data = UttData(four, tokenizer, cfg2.cmvn)
    again = evaluate(model, data, data.utts, 100000, torch.device("cpu"))
    assert again["wer"] == 0.0 and again["hyps"] == {u: data.data.text[u] for u in data.utts}


def test_resume_continues_bit_for_bit(corpus, tmp_path):
    overrides = TINY + ["train.epochs=2", "train.max_frames=2500", "train.checkpoint_every=2", "train.lr=2e-3"]
    train(load_config(overrides=overrides), corpus / "train", corpus / "train", corpus / "units.txt",
          tmp_path / "a", progress=False)
    interrupted = train(load_config(overrides=overrides + ["train.max_steps=3"]), corpus / "train", corpus / "train",
                        corpus / "units.txt", tmp_path / "b", progress=False)
    assert interrupted["step"] == 3 and not (tmp_path / "b" / "epoch-1.pt").exists()
    train(load_config(overrides=overrides), corpus / "train", corpus / "train", corpus / "units.txt",
          tmp_path / "b", resume=True, progress=False)
    a, b = load_checkpoint(tmp_path / "a" / "epoch-2.pt"), load_checkpoint(tmp_path / "b" / "epoch-2.pt")
    assert a["step"] == b["step"] > 3
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert (tmp_path / "a" / "metrics.csv").read_text().splitlines()[1:] != []


def test_non_finite_batches_are_skipped_and_counted(corpus, tmp_path, caplog):
    import shutil

    shutil.copytree(corpus, tmp_path / "copy")  # audio paths are relative: copy the corpus whole
    data = tmp_path / "copy" / "train"
    chunk = sorted((data / "fbank").glob("raw_fbank.*.npy"))[0]
    array = np.load(chunk)
    array[5, 3] = np.nan
    np.save(chunk, array)
    cfg = load_config(overrides=TINY + ["train.epochs=1", "train.max_frames=2500", "cmvn=none"])
    with caplog.at_level(logging.WARNING):
        result = train(cfg, data, data, corpus / "units.txt", tmp_path / "exp", progress=False)
    assert result["skipped_batches"] == 1 and "non-finite loss or gradient, batch skipped" in caplog.text
    weights = load_checkpoint(tmp_path / "exp" / "epoch-1.pt")["model"]
    assert all(torch.isfinite(v).all() for v in weights.values())


def test_checkpoint_loading_refuses_code_and_damage(tmp_path):
    torch.save({"model": {}, "hook": os.system}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_checkpoint(tmp_path / "evil.pt")
    torch.save({"model": {"w": torch.ones(1000)}}, tmp_path / "ok.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "ok.pt").read_bytes()[:500])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(tmp_path / "cut.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not a speechmeta checkpoint"):
        load_checkpoint(tmp_path / "list.pt")


def test_init_from_other_vocabulary_reinitializes_only_the_head(corpus, tmp_path, caplog):
    cfg = load_config(overrides=TINY + ["train.epochs=1", "train.max_frames=4000"])
    train(cfg, corpus / "train", corpus / "train", corpus / "units.txt", tmp_path / "a", progress=False)
    units = CharTokenizer.build(list(DataDir.load(corpus / "train").text.values()) + ["XYZ QJ"])
    units.save(tmp_path / "units_big.txt")
    cfg0 = load_config(overrides=TINY + ["train.epochs=1", "train.max_steps=1"])
    with caplog.at_level(logging.WARNING):
        train(cfg0, corpus / "train", corpus / "train", tmp_path / "units_big.txt", tmp_path / "b",
              init_from=tmp_path / "a" / "epoch-1.pt", progress=False)
    assert "the output layer is re-initialized" in caplog.text


def test_intermediate_ctc_training_from_a_model_without_conditioning(corpus, tmp_path, caplog):
    """Self-conditioned intermediate CTC fine-tunes a model trained without it (its conditioning layers start at zero,
    so it computes the same at first) and trains those layers; a weight without layers is an error."""
    cfg = load_config(overrides=TINY + ["train.epochs=1", "train.max_frames=4000"])
    train(cfg, corpus / "train", corpus / "train", corpus / "units.txt", tmp_path / "a", progress=False)
    inter = TINY + ["train.epochs=1", "train.max_frames=4000", "model.inter_layers=[1]", "model.self_condition=true",
                    "train.inter_ctc_weight=0.3"]
    with caplog.at_level(logging.INFO):
        train(load_config(overrides=inter), corpus / "train", corpus / "train", corpus / "units.txt", tmp_path / "b",
              init_from=tmp_path / "a" / "epoch-1.pt", progress=False)
    assert "has no condition.1.weight, condition.1.bias: left as initialized" in caplog.text
    weights = load_checkpoint(tmp_path / "b" / "epoch-1.pt")["model"]
    assert weights["condition.1.weight"].abs().sum() > 0
    model, *_ = load_model(tmp_path / "b" / "average.pt")
    assert model.inter_layers == (1,) and "1" in model.condition
    for bad in (["train.inter_ctc_weight=0.3"], ["model.inter_layers=[1]"], ["model.inter_layers=[1]",
                                                                             "train.inter_ctc_weight=1.0"]):
        with pytest.raises(ValueError, match="train.inter_ctc_weight must be in"):
            train(load_config(overrides=TINY + bad), corpus / "train", corpus / "train", corpus / "units.txt",
                  tmp_path / "c", progress=False)


def test_auxiliary_head_trains_on_the_other_units_and_travels_with_the_model(corpus, tmp_path, caplog):
    """--aux-units adds a second CTC head on the same encoder: started afresh from a model without one, trained (its
    CTC loss on the training data falls), stored with its units, rebuilt by load_model, left out of what adaptation
    adapts, and dropped by a model without one that starts from it."""
    from speechmeta.data.dataset import UttData
    from speechmeta.model.adapt_params import adapted_names
    from speechmeta.model.ctc import ctc_loss

    cfg = load_config(overrides=TINY + ["train.epochs=1", "train.max_frames=4000"])
    train(cfg, corpus / "train", corpus / "train", corpus / "units.txt", tmp_path / "a", progress=False)
    aux = CharTokenizer.build(list(DataDir.load(corpus / "train").text.values()) + ["XYZ QJ"])
    aux.save(tmp_path / "aux_units.txt")
    mt = load_config(overrides=TINY + ["train.epochs=4", "train.max_frames=4000", "train.aux_ctc_weight=0.5"])
    with caplog.at_level(logging.INFO):
        train(mt, corpus / "train", corpus / "train", corpus / "units.txt", tmp_path / "b",
              init_from=tmp_path / "a" / "epoch-1.pt", progress=False, aux_units=tmp_path / "aux_units.txt")
    assert "has no aux_head.weight, aux_head.bias: left as initialized" in caplog.text

    def aux_loss(path: Path) -> float:
        model, tokenizer, cfg, state = load_model(path)
        data = UttData(corpus / "train", tokenizer, cfg.cmvn, aux_tokenizer=aux)
        batch = data.batch(data.utts)
        with torch.no_grad():
            encoded, lens, _ = model.encode(batch["feats"], batch["feat_lens"])
            log_probs = model.aux_log_probs(encoded)
        assert log_probs.shape[-1] == len(aux) and state["aux_tokenizer"] == aux.to_dict()
        assert not [n for n in adapted_names(model, "all") if n.startswith("aux_head.")]
        return float(ctc_loss(log_probs, batch["aux_targets"], lens, batch["aux_target_lens"]))

    assert aux_loss(tmp_path / "b" / "average.pt") < 0.8 * aux_loss(tmp_path / "b" / "epoch-1.pt")
    plain, *_ = load_model(tmp_path / "a" / "average.pt")
    assert plain.aux_head is None and load_checkpoint(tmp_path / "a" / "average.pt")["aux_tokenizer"] is None
    with caplog.at_level(logging.WARNING):
        train(load_config(overrides=TINY + ["train.epochs=1", "train.max_steps=1"]), corpus / "train",
              corpus / "train", corpus / "units.txt", tmp_path / "c", init_from=tmp_path / "b" / "average.pt",
              progress=False)
    assert f"has an auxiliary head of {len(aux)} units, this model none: not taken" in caplog.text
    for bad, units in ((["train.aux_ctc_weight=0.3"], None), ([], tmp_path / "aux_units.txt")):
        with pytest.raises(ValueError, match="train.aux_ctc_weight must be in"):
            train(load_config(overrides=TINY + bad), corpus / "train", corpus / "train", corpus / "units.txt",
                  tmp_path / "d", progress=False, aux_units=units)


def test_bf16_precision_on_cpu(corpus, tmp_path):
    """`train.precision=bf16` runs the step under CPU bf16 autocast: weights and checkpoints stay fp32, the run
    differs from fp32's (so autocast was on) but trains alike; an unknown precision is an error before any work."""
    runs = {}
    for precision in ("fp32", "bf16"):
        cfg = load_config(overrides=TINY + ["train.epochs=2", "train.max_frames=4000", f"train.precision={precision}"])
        runs[precision] = train(cfg, corpus / "train", corpus / "train", corpus / "units.txt", tmp_path / precision,
                                progress=False)
    fp32 = load_checkpoint(tmp_path / "fp32" / "epoch-2.pt")["model"]
    bf16 = load_checkpoint(tmp_path / "bf16" / "epoch-2.pt")["model"]
    assert all(w.dtype == torch.float32 for w in bf16.values())
    assert any(not torch.equal(fp32[k], bf16[k]) for k in fp32)
    assert math.isfinite(runs["bf16"]["train_loss"])
    assert abs(runs["bf16"]["train_loss"] - runs["fp32"]["train_loss"]) < 0.1 * runs["fp32"]["train_loss"]
    with pytest.raises(ValueError, match="precision must be one of auto, bf16, fp32, not 'fp16'"):
        train(load_config(overrides=TINY + ["train.precision=fp16"]), corpus / "train", corpus / "train",
              corpus / "units.txt", tmp_path / "bad", progress=False)
    assert not (tmp_path / "bad").exists()
