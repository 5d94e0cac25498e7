"""Adapting a model to a new speaker from a few utterances, with the methods the reports compare.

- `none`:     the model as it is;
- `finetune`: every weight, plain gradient steps on the speaker's support utterances;
- `lhuc`:     LHUC scalers (attached at 1), gradient steps on them alone;
- `adapter`:  a zero-initialized residual adapter per block, gradient steps on it alone;
- `meta`:     the rule stored in a meta-trained model (`speechmeta meta-train`): its learned initialization, its
              parameter set, its inner steps and (learned, for Meta-SGD) rates, per tensor or per weight. Reported
              under the algorithm's name (fomaml, reptile, metasgd, maml).
Every method is the same loop (`speechmeta.meta.inner.adapt`, run with plain autograd as `adapt_test_time` since
nothing differentiates through it here): `steps` steps of fast <- fast - lr * grad of the
support CTC loss, the model in eval mode (no dropout); only what adapts differs. Steps and rates of the baselines
are tuned on dev speakers (`speechmeta adapt-eval --tune`), never on the test speakers.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.func import functional_call

from speechmeta.config import Config
from speechmeta.data.dataset import MAX_FRAMES, UttData
from speechmeta.data.phone_tokenizer import Tokenizer
from speechmeta.meta.batched import batched_adapt
from speechmeta.meta.inner import Params, adapt_test_time, ctc_task_loss, prepared
from speechmeta.model.adapt_params import adapted_names, attach_speaker_params, split_params
from speechmeta.model.beam_search import BeamSearch
from speechmeta.model.conformer import ConformerCTC
from speechmeta.model.ctc import greedy_decode
from speechmeta.profile import check_base, check_tensors, file_sha256, load_profile
from speechmeta.train import load_model, resolve_device

log = logging.getLogger(__name__)

BASELINES = {"none": None, "finetune": "all", "lhuc": "lhuc", "adapter": "adapter"}
METHODS = (*BASELINES, "meta")


@dataclass
class Adapter:
    """A model ready to adapt to speakers: what adapts (`fast`, from where), at which rates, for how many steps."""

    model: ConformerCTC
    tokenizer: Tokenizer
    cfg: Config
    state: dict
    method: str  # the name reports use: none, finetune, lhuc, adapter, or the meta-learning algorithm
    param_set: str | None
    adapter_dim: int
    fast: Params
    frozen: Params
    lrs: Params
    steps: int
    model_sha256: str
    device: torch.device

    def params(self, fast: Params | None = None) -> Params:
        return {**self.frozen, **(self.fast if fast is None else fast)}


def mean_rate(lrs: Params) -> torch.Tensor:
    """The mean of the inner rates (one per adapted tensor, or one per weight: `meta.rates`)."""
    return torch.cat([v.flatten() for v in lrs.values()]).mean()


def load_adapter(model_path, method: str = "auto", steps: int | None = None, lr: float | None = None,
                 device: str = "cpu", adapter_dim: int = 32) -> Adapter:
    """The model at `model_path` set up for `method` ("auto": the model's meta-learned rule if it has one).
    `steps`/`lr` override the method's own (a meta rule's rates are scaled so that their mean becomes `lr`)."""
    dev = resolve_device(device)
    model, tokenizer, cfg, state = load_model(model_path, str(dev))
    rule = state.get("meta")
    if method == "auto":
        if rule is None:
            raise ValueError(f"{model_path} holds no meta-learned adaptation rule: give --method "
                             f"({', '.join(BASELINES)})")
        method = "meta"
    if method not in METHODS:
        raise ValueError(f"unknown adaptation method '{method}', expected one of {', '.join(METHODS)}")
    if method == "meta":
        if rule is None:
            raise ValueError(f"{model_path} holds no meta-learned adaptation rule (it is not a meta-train output)")
        param_set, name, adapter_dim = rule["param_set"], rule["algorithm"], rule["adapter_dim"]
        lrs = {n: v.to(dev) for n, v in rule["inner_lrs"].items()}
        if lr is not None:
            scale = lr / mean_rate(lrs)
            lrs = {n: v * scale for n, v in lrs.items()}
        steps = rule["inner_steps"] if steps is None else steps
    else:
        param_set, name = BASELINES[method], method
        if rule is not None and param_set not in (None, "all", rule["param_set"]):
            raise ValueError(f"{model_path} is meta-trained with '{rule['param_set']}' parameters; adapt it with "
                             "--method meta, or adapt its base model with --method " + method)
        if param_set in ("lhuc", "adapter") and rule is None:
            model = attach_speaker_params(model, param_set, adapter_dim).to(dev)
        if method != "none" and (steps is None or lr is None):
            raise ValueError(f"method '{method}' needs --steps and --lr (tune them on dev speakers: adapt-eval --tune)")
        lrs = {}
    model.eval()
    names = adapted_names(model, param_set) if param_set else []
    fast, frozen = split_params(model, names)
    if method not in ("meta", "none"):
        lrs = {n: torch.tensor(float(lr), device=dev) for n in names}
    return Adapter(model, tokenizer, cfg, state, name, param_set, adapter_dim, fast, frozen, lrs,
                   0 if method == "none" else int(steps), file_sha256(model_path), dev)


def adapt_speakers(ad: Adapter, supports: list[dict], steps: int | None = None, batched: bool | None = None
                   ) -> list[Params]:
    """The adapted tensors of each speaker from its support batch. `batched` (default: on CUDA): all speakers in one
    vmap pass; else one after another with the fused CTC."""
    steps = ad.steps if steps is None else steps
    if steps == 0 or not ad.fast:
        return [dict(ad.fast) for _ in supports]
    supports = [{k: v.to(ad.device) for k, v in s.items() if isinstance(v, torch.Tensor)} for s in supports]
    if batched is None:
        batched = ad.device.type == "cuda" and len(supports) > 1
    if batched and len({s["feat_lens"].shape[0] for s in supports}) == 1:
        loss = ctc_task_loss(ad.model, ad.frozen, vmappable=True, bf16=ad.device.type == "cuda")
        stacked = batched_adapt(loss, ad.fast, ad.lrs, supports, steps)
        return [{k: v[i] for k, v in stacked.items()} for i in range(len(supports))]
    loss = ctc_task_loss(ad.model, ad.frozen, bf16=ad.device.type == "cuda")
    return [adapt_test_time(loss, ad.fast, s, ad.lrs, steps) for s in supports]


def adapt_trajectory(ad: Adapter, support: dict, milestones: list[int]) -> dict[int, Params]:
    """The adapted tensors after each number of steps in `milestones` (one run, for tuning the steps)."""
    loss = ctc_task_loss(ad.model, ad.frozen, bf16=ad.device.type == "cuda")
    support = prepared(loss, {k: v.to(ad.device) for k, v in support.items() if isinstance(v, torch.Tensor)})
    fast, done, out = dict(ad.fast), 0, {}  # the subsampling runs once for all milestones
    for m in sorted(set(milestones)):
        if ad.fast and m > done:
            fast = adapt_test_time(loss, fast, support, ad.lrs, m - done)
        done = max(done, m)
        out[m] = fast
    return out


@torch.no_grad()
def log_probs(ad: Adapter, fast: Params, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=ad.device.type == "cuda"):
        out, lens = functional_call(ad.model, ad.params(fast), (batch["feats"].to(ad.device),
                                                                 batch["feat_lens"].to(ad.device)))
    return out.float(), lens


def batch_hyps(ad: Adapter, fast: Params, batch: dict, search: BeamSearch | None = None) -> dict[str, str]:
    """CTC hypotheses of a batch with the speaker's adapted tensors: greedy, or with `search` (prefix beam)."""
    out, lens = log_probs(ad, fast, batch)
    if search is None:
        return {u: ad.tokenizer.decode(ids) for u, ids in zip(batch["utts"], greedy_decode(out, lens), strict=True)}
    return {u: search.decode(out[b, : int(lens[b])].cpu().numpy()) for b, u in enumerate(batch["utts"])}


def pseudo_label(ad: Adapter, batch: dict, min_confidence: float) -> tuple[dict, list[str], dict[str, float]]:
    """Unsupervised adaptation data: the model's own greedy hypotheses as targets for the utterances it is confident
    about. Confidence = mean posterior of the non-blank frames the hypothesis is read from (0 for an empty one).
    Returns (batch of the kept utterances with their hypotheses as targets, kept ids, confidence per utterance)."""
    out, lens = log_probs(ad, ad.fast, batch)
    best, ids = out.max(-1)
    keep, conf, targets = [], {}, []
    for b, (utt, hyp) in enumerate(zip(batch["utts"], greedy_decode(out, lens), strict=True)):
        n = int(lens[b])
        frames = ids[b, :n] != 0
        conf[utt] = float(best[b, :n][frames].exp().mean()) if frames.any() else 0.0
        if conf[utt] >= min_confidence and hyp:
            keep.append(b)
            targets.append(torch.tensor(hyp, dtype=torch.long))
    if not keep:
        raise ValueError(f"no utterance reached confidence {min_confidence} (best {max(conf.values()):.2f}): "
                         "lower --min-confidence or adapt from transcribed utterances")
    index = torch.tensor(keep)
    width = int(batch["feat_lens"][index].max())
    kept = {"utts": [batch["utts"][b] for b in keep], "feats": batch["feats"][index][:, :width],
            "feat_lens": batch["feat_lens"][index],
            "targets": torch.nn.utils.rnn.pad_sequence(targets, batch_first=True),
            "target_lens": torch.tensor([len(t) for t in targets])}
    return kept, kept["utts"], conf


def apply_profile(model: ConformerCTC, model_path, profile_path) -> dict:
    """Load a speaker profile's tensors into `model` (loaded from `model_path`); returns the profile's info. Refused
    when the profile was made from another model file or does not hold exactly the tensors its method adapts."""
    tensors, base_sha256, info = load_profile(profile_path)
    check_base(profile_path, model_path, base_sha256)
    param_set = info.get("param_set")
    if param_set in ("lhuc", "adapter") and model.blocks[0].speaker is None:
        attach_speaker_params(model, param_set, int(info.get("adapter_dim", 32)))
    shapes = {n: p.shape for n, p in model.named_parameters()}
    check_tensors(profile_path, model_path, {n: shapes[n] for n in adapted_names(model, param_set)} if param_set
                  else {}, tensors)
    device = next(model.parameters()).device
    model.load_state_dict({k: v.to(device) for k, v in tensors.items()}, strict=False)
    return info


def only_speaker(data: UttData) -> str:
    """The speaker of a data dir that holds one (a person's own recordings): `--spk` may then be left out."""
    if len(data.data.spk2utt) != 1:
        shown = ", ".join(sorted(data.data.spk2utt)[:10])
        raise ValueError(f"give --spk: {data.path} holds {len(data.data.spk2utt)} speakers ({shown}"
                         f"{', ...' if len(data.data.spk2utt) > 10 else ''})")
    return next(iter(data.data.spk2utt))


def choose_support(data: UttData, spk: str, k: int | None, support_list: list[str] | None, seed: int) -> list[str]:
    """The support utterances of `spk`: those listed (the speaker's id is skipped: a support list may be an
    spk2utt line), or K drawn (from `seed`) among the speaker's utterances."""
    utts = data.data.spk2utt.get(spk)
    if utts is None:
        known = ", ".join(sorted(data.data.spk2utt)[:10])
        raise ValueError(f"speaker '{spk}' is not in {data.path}/spk2utt (speakers: {known}...)")
    if support_list is not None:
        support_list = [u for u in support_list if u != spk]
        foreign = [u for u in support_list if u not in utts]
        if foreign:
            raise ValueError(f"utterance '{foreign[0]}' of the support list is not an utterance of speaker '{spk}' "
                             f"in {data.path}")
        chosen = list(support_list)
    else:
        if k is None or k < 1:
            raise ValueError("give --k (number of support utterances) or --support-list")
        if len(utts) < k:
            raise ValueError(f"speaker '{spk}' has {len(utts)} utterance(s) in {data.path}, fewer than K={k}")
        chosen = sorted(random.Random(seed).sample(sorted(utts), k))
    for u in chosen:
        if u not in data.num_frames:
            raise ValueError(f"utterance '{u}' of speaker '{spk}' has no features in {data.path}/feats.scp "
                             "(skipped as bad audio?)")
        why = data.too_long(u, MAX_FRAMES) or data.too_short(u)
        if why:
            raise ValueError(f"utterance '{u}' ({data.data.audio(u).path}) of speaker '{spk}' cannot adapt: {why}; "
                             "choose other utterances (--support-list)")
    return chosen


def adapt_to_speaker(model_path: Path, data_dir: Path, spk: str | None, out: Path, k: int | None = None,
                     support_list: list[str] | None = None, method: str = "auto", steps: int | None = None,
                     lr: float | None = None, unsupervised: bool = False, min_confidence: float = 0.7,
                     device: str = "auto", seed: int = 0) -> dict:
    """`speechmeta adapt`: adapt to one speaker (None: the data dir's only one) and write the speaker profile `out`;
    returns its info."""
    from speechmeta.adapt_eval import open_data
    from speechmeta.data.compute_feats import compute_feats
    from speechmeta.profile import save_profile

    ad = load_adapter(model_path, method, steps, lr, device)
    if not (Path(data_dir) / "feats.scp").exists():
        log.info("%s has no features: computing them (as speechmeta compute-feats would)", data_dir)
        compute_feats(data_dir, ad.cfg.fbank, progress=False)
    data = open_data(ad, Path(data_dir), need_text=not unsupervised)  # unsupervised: transcripts unused
    spk = spk if spk is not None else only_speaker(data)
    utts = choose_support(data, spk, k, support_list, seed)
    batch = data.batch(utts)
    confidence = {}
    if unsupervised:
        batch, utts, confidence = pseudo_label(ad, batch, min_confidence)
    began = time.perf_counter()
    fast = adapt_speakers(ad, [batch])[0]
    seconds = time.perf_counter() - began
    info = {"method": ad.method, "param_set": ad.param_set, "adapter_dim": ad.adapter_dim, "spk": spk,
            "k": len(utts), "steps": ad.steps, "utts": utts, "unsupervised": unsupervised,
            "confidence": confidence, "adapt_seconds": round(seconds, 3),
            "lrs": {n: float(v) for n, v in ad.lrs.items()} if len(ad.lrs) <= 64 and all(
                v.dim() == 0 for v in ad.lrs.values()) else {"mean": float(mean_rate(ad.lrs))},
            "model": str(model_path)}
    if ad.cfg.cmvn == "speaker":  # the speaker's CMVN statistics, for transcribing their other recordings
        info["cmvn_stats"] = data.spk_stats[spk].tolist()
    save_profile(out, fast, ad.model_sha256, info)
    log.info("adapted %s to speaker %s from %d utterance(s) (%s, %d steps) in %.2f s -> %s", model_path, spk,
             len(utts), ad.method, ad.steps, seconds, out)
    return info
