"""Initialization learning: ordinary multi-speaker CTC training of the conformer (`speechmeta train`).

AdamW with warmup then 1/sqrt(step) decay, gradient clipping, SpecAugment, optional speed perturbation,
length-sorted batches, optional intermediate CTC losses (`train.inter_ctc_weight`). A batch whose loss or gradient
is not finite is skipped and counted, never applied.
Checkpoints (each epoch, and every N steps) hold model, optimizer, scheduler, step, position in the epoch and RNG
state, so `resume=True` continues bit-for-bit. Validation loss and greedy WER/CER each epoch go to metrics.csv.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from speechmeta.checkpoint import average_models, checkpoints, latest, load_checkpoint, save_checkpoint
from speechmeta.config import Config, save_config, to_dict
from speechmeta.data.augment import freq_warp, spec_augment, speed_perturb
from speechmeta.data.dataset import UttData, length_batches
from speechmeta.data.phone_tokenizer import PhoneTokenizer, Tokenizer, load_tokenizer, tokenizer_from_dict
from speechmeta.fileio import append_csv_row, atomic_write_lines, atomic_write_text, keep_csv_rows, remove_stale_temps
from speechmeta.model.conformer import ConformerCTC
from speechmeta.model.ctc import ctc_loss, greedy_decode
from speechmeta.scoring import score

log = logging.getLogger(__name__)
METRICS = ["epoch", "step", "train_loss", "valid_loss", "valid_wer", "valid_cer", "lr", "seconds", "skipped_batches"]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


PRECISIONS = ("auto", "bf16", "fp32")


def autocast(device: torch.device, precision: str = "auto"):
    """The forward's autocast: `auto` is bf16 on CUDA and fp32 on CPU, where fp32 is exact but not always faster: on
    a CPU with native bf16 matrix units (AMX, AVX512-BF16) a `small` training step ran 1.12-1.51x faster under CPU
    bf16 autocast (benchmarks/README.md, `train_step.py --cpu-bf16`); `bf16` asks for it on any device (weights,
    gradients and the optimizer stay fp32), `fp32` turns it off on CUDA too (`train` checks the name)."""
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def warmup_then_decay(warmup_steps: int):
    def factor(step: int) -> float:
        step = step + 1
        return min(step / max(1, warmup_steps), math.sqrt(max(1, warmup_steps) / step))
    return factor


def load_init(model: ConformerCTC, path: Path) -> None:
    """Start from another model's weights; a different vocabulary re-initializes only the output layer (an auxiliary
    head of other units, or one the other model lacks, starts afresh too; one this model lacks is dropped)."""
    weights = load_checkpoint(path)["model"]
    fresh = ("condition.", "aux_head.")  # self-conditioning layers a model without them starts at zero: it computes
    if weights["head.weight"].shape != model.head.weight.shape:  # the same
        log.warning("%s has %d output units, this model %d: the output layer is re-initialized",
                    path, weights["head.weight"].shape[0], model.head.weight.shape[0])
        fresh = ("head.", "condition.", "aux_head.")  # the conditioning layers read the output units too
        weights = {k: v for k, v in weights.items() if not k.startswith(fresh[:2])}
    aux = model.aux_head.weight.shape if model.aux_head is not None else None
    if "aux_head.weight" in weights and weights["aux_head.weight"].shape != aux:
        log.warning("%s has an auxiliary head of %s units, this model %s: not taken", path,
                    weights["aux_head.weight"].shape[0], aux[0] if aux else "none")
        weights = {k: v for k, v in weights.items() if not k.startswith("aux_head.")}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing:
        log.info("%s has no %s: left as initialized", path, ", ".join(missing))
    if unexpected or [k for k in missing if not k.startswith(fresh)]:
        raise ValueError(f"{path} does not fit this model: missing {missing[:5]}, unexpected {unexpected[:5]}")


@torch.no_grad()
def evaluate(model: ConformerCTC, data: UttData, utts: list[str], max_frames: int, device: torch.device) -> dict:
    """Mean CTC loss (per target unit) and greedy WER/CER on `utts`; hypotheses included."""
    model.eval()
    total_loss, total_units, hyps = 0.0, 0, {}
    for batch_utts in length_batches({u: data.num_frames[u] for u in utts}, max_frames, shuffle=False):
        batch = data.batch(batch_utts)
        with autocast(device):
            log_probs, lens = model(batch["feats"].to(device), batch["feat_lens"].to(device))
        log_probs = log_probs.float()
        loss = ctc_loss(log_probs, batch["targets"].to(device), lens, batch["target_lens"].to(device), "sum")
        total_loss += loss.item()
        total_units += int(batch["target_lens"].sum())
        for utt, ids in zip(batch_utts, greedy_decode(log_probs, lens), strict=True):
            hyps[utt] = data.tokenizer.decode(ids)
    refs = {u: data.tokenizer.norm(data.data.text[u]) for u in utts}
    result = score(refs, hyps)
    return {"loss": total_loss / max(total_units, 1), "wer": result["wer"], "cer": result["cer"], "hyps": hyps}


def leave_out_unusable(datasets: list[UttData], max_frames: int, exp_dir: Path, write: bool = True
                       ) -> dict[str, str]:
    """Leave out the utterances no batch can use (longer than `max_frames`, too short for CTC), each listed in
    EXP/left_out.txt (`utt<TAB>data dir<TAB>why`) and the log; returns utterance -> why."""
    lines: dict[str, None] = {}
    left_out: dict[str, str] = {}
    for data in datasets:
        bad = {u: why for u in data.utts if (why := data.too_long(u, max_frames) or data.too_short(u))}
        data.drop(bad)
        left_out.update(bad)
        lines.update({f"{u}\t{data.path}\t{why}": None for u, why in bad.items()})
    path = exp_dir / "left_out.txt"
    if write and lines:
        atomic_write_lines(path, list(lines))
        log.warning("%d utterance(s) left out, listed in %s: %s", len(lines), path,
                    "; ".join(line.replace("\t", " ") for line in list(lines)[:3]))
    elif write and path.exists():
        path.unlink()
    return left_out


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def train(cfg: Config, train_dir: Path, valid_dir: Path, units: Path, exp_dir: Path, resume: bool = False,
          init_from: Path | None = None, progress: bool = True, aux_units: Path | None = None) -> dict:
    """Train into `exp_dir`; returns the last epoch's metrics. See the module docstring. `aux_units`: a second unit
    set (e.g. characters beside phones) for an auxiliary CTC head on the same encoder, weighted by
    `train.aux_ctc_weight`; it rescores the main head's hypotheses in decoding (`speechmeta decode --nbest`)."""
    tc = cfg.train
    if not 0.0 <= tc.aux_ctc_weight < 1.0 or (tc.aux_ctc_weight > 0) != (aux_units is not None):
        raise ValueError(f"train.aux_ctc_weight must be in [0, 1), and above 0 exactly when --aux-units is given: "
                         f"{tc.aux_ctc_weight} with aux units {aux_units}")
    if not 0.0 <= tc.inter_ctc_weight < 1.0 or (tc.inter_ctc_weight > 0) != bool(cfg.model.inter_layers):
        raise ValueError(f"train.inter_ctc_weight must be in [0, 1), and above 0 exactly when model.inter_layers "
                         f"names blocks: {tc.inter_ctc_weight} with inter_layers {cfg.model.inter_layers}")
    if tc.precision not in PRECISIONS:
        raise ValueError(f"train.precision must be one of {', '.join(PRECISIONS)}, not '{tc.precision}'")
    exp_dir.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale_temps(exp_dir):
        log.info("removed %s, left by an interrupted write", stale)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = resolve_device(tc.device)
    torch.manual_seed(tc.seed)
    random.seed(tc.seed)
    np.random.seed(tc.seed)

    tokenizer = load_tokenizer(units)
    aux_tokenizer = load_tokenizer(aux_units) if aux_units is not None else None
    train_data = UttData(train_dir, tokenizer, cfg.cmvn, fbank=cfg.fbank, aux_tokenizer=aux_tokenizer)
    valid_data = UttData(valid_dir, tokenizer, cfg.cmvn, global_stats=train_data.global_stats, fbank=cfg.fbank,
                         aux_tokenizer=aux_tokenizer)
    if tokenizer.oov:
        oov_utts = [u for u in train_data.utts if tokenizer.count_oov([train_data.data.text[u]])]
        what = "words outside the lexicon of" if isinstance(tokenizer, PhoneTokenizer) else "characters outside"
        log.warning("training text has %s %s, mapped to <unk>: %s (%d utterance(s) of %s, e.g. "
                    "'%s'); if they belong, rebuild the units with 'speechmeta make-units'", what, units,
                    dict(tokenizer.oov.most_common(20)),
                    len(oov_utts), train_dir / "text", oov_utts[0] if oov_utts else "?")
    if train_data.missing:
        log.warning("%d training utterances have no features (see bad_utts.txt) and are left out",
                    len(train_data.missing))
    leave_out_unusable([train_data, valid_data], tc.max_frames, exp_dir)
    if not train_data.utts:
        raise ValueError(f"no utterance of {train_dir} is left to train on (see {exp_dir / 'left_out.txt'})")
    step_every = max(1, len(valid_data.utts) // tc.valid_max_utts)
    valid_utts = valid_data.utts[::step_every][: tc.valid_max_utts]

    model = ConformerCTC(cfg.model, len(tokenizer), len(aux_tokenizer) if aux_tokenizer else 0).to(device)
    # fused: one kernel over all tensors, 4.6x faster on a 2-core CPU than the default per-tensor loop (26.6 ms for
    # `small`; its training step 1.05x faster, benchmarks/dropout_adamw.py); the same updates within 5e-8
    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, fused=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_then_decay(tc.warmup_steps))
    epoch, done_in_epoch, step, skipped, loss_sum, loss_batches = 1, 0, 0, 0, 0.0, 0
    last = latest(exp_dir) if resume else None
    if last is not None:
        state = load_checkpoint(last)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        epoch, done_in_epoch, step = state["epoch"], state["batch_in_epoch"], state["step"]
        skipped, loss_sum, loss_batches = state["skipped_batches"], state["loss_sum"], state["loss_batches"]
        set_rng_state(state["rng"])
        log.info("resumed from %s: epoch %d, batch %d, step %d", last, epoch, done_in_epoch, step)
    elif init_from is not None:
        load_init(model, init_from)
        log.info("initialized from %s", init_from)
    save_config(cfg, exp_dir / "config.yaml")
    if units.resolve() != (exp_dir / "units.txt").resolve():
        atomic_write_text(exp_dir / "units.txt", units.read_text(encoding="utf-8"))
        for beside in ("text_norm.json", "lexicon.txt"):
            if units.with_name(beside).exists():
                atomic_write_text(exp_dir / beside, units.with_name(beside).read_text(encoding="utf-8"))
    log.info("model: %s, %d parameters, device %s; %d training, %d validation utterances", cfg.model.size,
             sum(p.numel() for p in model.parameters()), device, len(train_data.utts), len(valid_utts))

    def save(path: Path, next_epoch: int, batch_in_epoch: int) -> None:
        save_checkpoint(path, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "epoch": next_epoch, "batch_in_epoch": batch_in_epoch, "step": step, "skipped_batches": skipped,
            "loss_sum": loss_sum, "loss_batches": loss_batches, "rng": rng_state(), "config": to_dict(cfg),
            "tokenizer": tokenizer.to_dict(), "aux_tokenizer": aux_tokenizer.to_dict() if aux_tokenizer else None,
            "cmvn_global": torch.from_numpy(train_data.global_stats)
            if train_data.global_stats is not None else None,
        })

    metrics_path = exp_dir / "metrics.csv"
    keep_csv_rows(metrics_path, lambda row: int(row["epoch"]) < epoch)  # rows of epochs the checkpoint has finished
    result: dict = {}
    began = time.time()
    while epoch <= tc.epochs:
        batches = length_batches(train_data.num_frames, tc.max_frames, tc.seed, epoch,
                                 shuffle=not (tc.sortagrad and epoch == 1))
        model.train()
        bar = tqdm(total=len(batches), initial=done_in_epoch, desc=f"epoch {epoch}", unit="batch",
                   disable=not progress)
        for index in range(done_in_epoch, len(batches)):
            batch = train_data.batch(batches[index])
            feats, feat_lens = batch["feats"], batch["feat_lens"]
            if tc.speed_perturb:
                factor = tc.speed_perturb[int(torch.randint(len(tc.speed_perturb), ()))]
                feats, feat_lens = speed_perturb(feats, feat_lens, factor)
            feats = freq_warp(feats, tc.freq_warp)
            if epoch >= tc.specaug_from_epoch:
                feats = spec_augment(feats, feat_lens, cfg.specaug)
            targets, target_lens = batch["targets"].to(device), batch["target_lens"].to(device)
            with autocast(device, tc.precision):
                encoded, lens, inter = model.encode(feats.to(device), feat_lens.to(device))
                log_probs = model.head(encoded).log_softmax(dim=-1)
            output_loss = ctc_loss(log_probs.float(), targets, lens, target_lens)
            loss = output_loss
            if inter:  # intermediate CTC: the middle blocks learn to predict the units too (a regularizer)
                inter_loss = sum(ctc_loss(lp.float(), targets, lens, target_lens) for lp in inter) / len(inter)
                loss = (1 - tc.inter_ctc_weight) * output_loss + tc.inter_ctc_weight * inter_loss
            if aux_tokenizer is not None:  # the same encoder spells the transcript in the other units too
                aux_loss = ctc_loss(model.aux_log_probs(encoded).float(), batch["aux_targets"].to(device), lens,
                                    batch["aux_target_lens"].to(device))
                loss = (1 - tc.aux_ctc_weight) * loss + tc.aux_ctc_weight * aux_loss
            good = bool(torch.isfinite(loss))
            if good:
                loss.backward()
                norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                good = bool(torch.isfinite(norm))
            if good:
                optimizer.step()
                scheduler.step()
                step += 1
                loss_sum += output_loss.item()  # the output's CTC, as validation reports it
                loss_batches += 1
            else:
                skipped += 1
                log.warning("epoch %d batch %d: non-finite loss or gradient, batch skipped (%s ...)", epoch, index,
                            " ".join(batches[index][:3]))
            optimizer.zero_grad(set_to_none=True)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / max(loss_batches, 1):.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
            if tc.checkpoint_every and good and step % tc.checkpoint_every == 0:
                save(exp_dir / f"step-{step}.pt", epoch, index + 1)
                for old in checkpoints(exp_dir, r"step-(\d+)\.pt")[:-2]:
                    old.unlink()
            if tc.max_steps and step >= tc.max_steps:
                bar.close()
                save(exp_dir / f"step-{step}.pt", epoch, index + 1)
                log.info("stopped at max_steps=%d", tc.max_steps)
                return {"step": step, "epoch": epoch, "skipped_batches": skipped}
        bar.close()
        valid = evaluate(model, valid_data, valid_utts, tc.max_frames, device)
        result = {"epoch": epoch, "step": step, "train_loss": loss_sum / max(loss_batches, 1),
                  "valid_loss": valid["loss"], "valid_wer": valid["wer"], "valid_cer": valid["cer"],
                  "lr": scheduler.get_last_lr()[0], "seconds": round(time.time() - began, 1),
                  "skipped_batches": skipped}
        log.info("epoch %d: %s", epoch, {k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()})
        append_csv_row(metrics_path, METRICS, result)
        epoch, done_in_epoch, loss_sum, loss_batches = epoch + 1, 0, 0.0, 0
        save(exp_dir / f"epoch-{epoch - 1}.pt", epoch, 0)
    write_average(exp_dir, tc.average_last)
    return result


def write_average(exp_dir: Path, last_n: int) -> Path:
    """average.pt: the mean weights of the last N epoch checkpoints, with the newest one's metadata."""
    paths = checkpoints(exp_dir)[-last_n:]
    state = load_checkpoint(paths[-1])
    averaged = {k: v for k, v in state.items() if k not in ("optimizer", "scheduler", "rng")}
    averaged["model"] = average_models(paths)
    averaged["averaged"] = [p.name for p in paths]
    save_checkpoint(exp_dir / "average.pt", averaged)
    log.info("wrote %s (mean of %s)", exp_dir / "average.pt", ", ".join(p.name for p in paths))
    return exp_dir / "average.pt"


def model_data(data_dir: str | os.PathLike, tokenizer: Tokenizer, cfg: Config, state: dict,
               need_text: bool = True) -> UttData:
    """A data dir's utterances as a model from `load_model` reads them: its CMVN mode and filterbank, with training's
    global statistics (need_text False: an untranscribed data dir is read too)."""
    stats = state.get("cmvn_global")
    return UttData(data_dir, tokenizer, cfg.cmvn, global_stats=stats.numpy() if stats is not None else None,
                   fbank=cfg.fbank, need_text=need_text)


def load_model(path: str | os.PathLike, device: str = "cpu") -> tuple[ConformerCTC, Tokenizer, Config, dict]:
    """A trained model ready for decoding: (model in eval mode, tokenizer, config, checkpoint state). A meta-trained
    model comes with the speaker parameters (LHUC, adapters) its rule adapts."""
    from speechmeta.config import from_dict
    from speechmeta.model.adapt_params import attach_speaker_params

    state = load_checkpoint(path)
    cfg = from_dict(Config, state["config"])
    tokenizer = tokenizer_from_dict(state["tokenizer"])
    aux = state.get("aux_tokenizer")
    model = ConformerCTC(cfg.model, len(tokenizer), len(tokenizer_from_dict(aux)) if aux else 0)
    if "meta" in state:
        attach_speaker_params(model, state["meta"]["param_set"], state["meta"]["adapter_dim"])
    model.load_state_dict(state["model"])
    return model.to(resolve_device(device)).eval(), tokenizer, cfg, state

