"""Few-shot adaptation, evaluated: each held-out speaker adapted from its K support utterances and scored on its test
utterances, for every K and seed of the few-shot split files (`data_prep/splits.py fewshot`), so every method sees
the same support and the same test utterances. `none` is scored once per seed, as K=0, on the same test
utterances; so is a meta-learned initialization before any adaptation step (its K=0 row), which separates what
adaptation gains from what meta-training changed in the model. Hypotheses are greedy, or prefix beam search with
the `BeamOptions` given (LM weight and word bonus tuned beforehand on dev data, as for the base model's decoding);
tuning the steps and rates decodes the same way.

Layout: OUT/k{K}/seed{S}/{hyp.txt, ref.txt, utt2spk, wer.json, wer.md}; a finished (K, seed) is kept on a rerun.
`tune` picks a method's steps (and, for the baselines, its rate) on dev speakers: one adaptation run per rate,
hypotheses read at each step count of `milestones`, lowest dev WER (summed over K) wins.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from pathlib import Path

import torch
from tqdm import tqdm

from speechmeta.adapt import (
    Adapter,
    adapt_speakers,
    adapt_trajectory,
    batch_hyps,
    load_adapter,
    mean_rate,
    pseudo_label,
)
from speechmeta.data.datadir import read_table
from speechmeta.data.dataset import MAX_FRAMES, UttData, length_batches
from speechmeta.decode import GREEDY, BeamOptions
from speechmeta.fileio import atomic_write_lines, atomic_write_text
from speechmeta.model.beam_search import BeamSearch
from speechmeta.profile import file_sha256
from speechmeta.scoring import score, write_report
from speechmeta.train import model_data

log = logging.getLogger(__name__)


def read_lists(path: Path) -> dict[str, list[str]]:
    """spk2utt-format file: speaker -> utterances."""
    if not path.is_file():
        raise FileNotFoundError(f"few-shot split file not found: {path} (run data_prep/splits.py fewshot)")
    return {e.key: e.value.split() for e in read_table(path).entries}


def open_data(ad: Adapter, data_dir: Path, need_text: bool = True) -> UttData:
    return model_data(data_dir, ad.tokenizer, ad.cfg, ad.state, need_text)


def decode_speaker(ad: Adapter, fast, data: UttData, utts: list[str], search: BeamSearch | None = None,
                   max_frames: int = MAX_FRAMES) -> dict[str, str]:
    data.check_length(utts, max_frames)
    out: dict[str, str] = {}
    for chunk in length_batches({u: data.num_frames[u] for u in utts}, max_frames, shuffle=False):
        out.update(batch_hyps(ad, fast, data.batch(chunk), search))
    return out


def describe(beam: BeamOptions | None) -> dict:
    return beam.describe() if beam else GREEDY


def schedule(ad: Adapter, k: int) -> dict:
    """The adaptation a (K, seed) result was made with: steps and mean rate (none at K=0)."""
    if not k or not ad.lrs:
        return {"steps": 0, "lr_mean": None}
    return {"steps": ad.steps, "lr_mean": round(float(mean_rate(ad.lrs)), 8)}


def support_batches(ad: Adapter, data: UttData, support: dict[str, list[str]], spks: list[str], unsupervised: bool,
                    min_confidence: float) -> list[dict]:
    batches = [data.batch(support[s]) for s in spks]
    if unsupervised:
        batches = [pseudo_label(ad, b, min_confidence)[0] for b in batches]
    return batches


def evaluate(ad: Adapter, data_dir: Path, fewshot: Path, shots: list[int], seeds: list[int], out: Path,
             unsupervised: bool = False, min_confidence: float = 0.7, progress: bool = True,
             beam: BeamOptions | None = None) -> list[dict]:
    """Adapt and score every (K, seed); returns one summary per (K, seed). A kept (K, seed) decoded otherwise than
    `beam` asks is done again."""
    data = open_data(ad, data_dir)
    search = beam.search(ad.tokenizer) if beam else None
    summaries = []
    for seed in seeds:
        test = read_lists(fewshot / f"test.seed{seed}")
        meta = ad.state.get("meta") is not None and ad.method == ad.state["meta"]["algorithm"]
        for k in ([0] if ad.method == "none" else [0, *shots] if meta else shots):
            where = out / f"k{k}" / f"seed{seed}"
            if (where / "wer.json").exists():
                kept = json.loads((where / "summary.json").read_text())
                if (kept.get("decoding", GREEDY) == describe(beam) and kept.get("model_sha256") == ad.model_sha256
                        and {"steps": kept.get("steps"), "lr_mean": kept.get("lr_mean")} == schedule(ad, k)):
                    summaries.append(kept)
                    continue
                log.info("%s came from another model, schedule or decoding: doing it again", where)
                (where / "wer.json").unlink()
            support = read_lists(fewshot / f"support.k{k}.seed{seed}") if k else {s: [] for s in test}
            spks = sorted(s for s in test if s in support)
            began = time.perf_counter()  # all speakers in one call: on CUDA one vmap pass, on CPU a loop
            batches = support_batches(ad, data, support, spks, unsupervised, min_confidence) if k else []
            adapted = adapt_speakers(ad, batches) if k else [ad.fast] * len(spks)
            seconds = time.perf_counter() - began
            hyps = {}
            for spk, fast in tqdm(list(zip(spks, adapted, strict=True)), desc=f"{ad.method} K={k} seed={seed}",
                                  unit="spk", disable=not progress, leave=False):
                hyps.update(decode_speaker(ad, fast, data, [u for u in test[spk] if u in data.num_frames], search))
            ref = {u: ad.tokenizer.norm(data.data.text[u]) for u in hyps}
            utt2spk = {u: data.data.utt2spk[u] for u in hyps}
            result = score(ref, hyps, utt2spk)
            result.update({"method": ad.method, "k": k, "seed": seed, **schedule(ad, k),
                           "adapt_seconds_per_speaker": seconds / max(len(spks), 1), "unsupervised": unsupervised,
                           "decoding": describe(beam), "model_sha256": ad.model_sha256})
            where.mkdir(parents=True, exist_ok=True)
            atomic_write_lines(where / "hyp.txt", [f"{u} {hyps[u]}".rstrip() for u in sorted(hyps)])
            atomic_write_lines(where / "ref.txt", [f"{u} {ref[u]}" for u in sorted(ref)])
            atomic_write_lines(where / "utt2spk", [f"{u} {utt2spk[u]}" for u in sorted(utt2spk)])
            summary = {k2: result[k2] for k2 in (
                "method", "k", "seed", "steps", "lr_mean", "wer", "cer", "errors", "ref_words", "char_errors", "chars",
                "speakers", "adapt_seconds_per_speaker", "unsupervised", "decoding", "model_sha256", "per_speaker")}
            atomic_write_text(where / "summary.json", json.dumps(summary, indent=1) + "\n")
            write_report(result, where)  # wer.json last: it marks the (K, seed) finished
            log.info("%s K=%d seed=%d: %s, CER %.2f%% (%d speakers, %.2f s adaptation per speaker)", ad.method, k,
                     seed, result["kaldi"], 100 * result["cer"], len(spks), summary["adapt_seconds_per_speaker"])
            summaries.append(summary)
    return summaries


def spread(utts: list[str], n: int) -> list[str]:
    """At most `n` of `utts`, evenly spaced over the list: not its first n, which in sorted ids can all share one
    prompt (FSDD's first 20 of a speaker all say 'zero')."""
    if len(utts) <= n:
        return utts
    return [utts[i * len(utts) // n] for i in range(n)]


def tune(model_path: Path, method: str, data_dir: Path, fewshot: Path, shots: list[int], seeds: list[int],
         lrs: list[float | None], milestones: list[int], device: str = "cpu", max_test_utts: int = 20,
         progress: bool = True, beam: BeamOptions | None = None, metric: str = "wer") -> dict:
    """The (steps, lr) of `method` with the lowest WER (or CER: `metric`) on dev speakers (errors summed over K and
    over the support draws of `seeds`: with few dev speakers, one draw of K utterances decides by chance), decoded
    as `beam` says (greedy when None). lr None: the method's own (a meta rule's rates)."""
    if metric not in ("wer", "cer"):
        raise ValueError(f"the tuning metric must be wer or cer, not '{metric}'")
    grid: list[dict] = []
    data = None
    search = None
    for lr in lrs:
        ad = load_adapter(model_path, method, steps=max(milestones), lr=lr, device=device)
        data = data or open_data(ad, data_dir)
        search = search or (beam.search(ad.tokenizer) if beam else None)
        errors = {m: 0 for m in milestones}
        char_errors = {m: 0 for m in milestones}
        words = chars = 0
        diverged = set()
        for seed, k in itertools.product(seeds, shots):
            test = read_lists(fewshot / f"test.seed{seed}")
            support = read_lists(fewshot / f"support.k{k}.seed{seed}")
            for spk in tqdm(sorted(s for s in test if s in support), desc=f"tune {method} lr={lr} K={k} seed={seed}",
                            disable=not progress, leave=False):
                utts = spread([u for u in test[spk] if u in data.num_frames], max_test_utts)
                ref = {u: ad.tokenizer.norm(data.data.text[u]) for u in utts}
                spk_words = sum(len(r.split()) for r in ref.values())
                spk_chars = sum(len(r) for r in ref.values())  # as score() counts them: spaces too
                words, chars = words + spk_words, chars + spk_chars
                for m, fast in adapt_trajectory(ad, data.batch(support[spk]), milestones).items():
                    if not all(torch.isfinite(v).all() for v in fast.values()):
                        diverged.add(m)  # a diverged model gets every word and character wrong
                        errors[m] += spk_words
                        char_errors[m] += spk_chars
                        continue
                    scored = score(ref, decode_speaker(ad, fast, data, utts, search))
                    errors[m] += scored["errors"]
                    char_errors[m] += scored["char_errors"]
        for m in milestones:
            grid.append({"lr": lr, "steps": m, "words": words, "wer": errors[m] / max(words, 1),
                         "cer": char_errors[m] / max(chars, 1), "diverged": m in diverged})
            log.info("tune %s: lr %s, %d steps: dev WER %.4f, CER %.4f", method, lr, m, grid[-1]["wer"],
                     grid[-1]["cer"])
    best = min(grid, key=lambda r: (r[metric], r["steps"]))
    return {"method": method, "model": str(model_path), "dev": str(data_dir), "shots": shots, "seeds": seeds,
            "settings": tune_settings(shots, seeds, lrs, milestones, max_test_utts, beam, file_sha256(model_path),
                                      metric),
            "best": {"steps": best["steps"], "lr": best["lr"]}, "grid": grid}


def tune_settings(shots: list[int], seeds: list[int], lrs: list, milestones: list[int], max_test_utts: int = 20,
                  beam: BeamOptions | None = None, model_sha256: str = "", metric: str = "wer") -> dict:
    """What a tuning result depends on besides the dev data: a kept result is reused only if they match."""
    drawn = {"seed": seeds[0]} if len(seeds) == 1 else {"seeds": seeds}  # one draw: as tunings were kept before
    settings = {"shots": shots, **drawn, "lrs": lrs, "milestones": milestones, "max_test_utts": max_test_utts,
                "dev_utts": "spread", "decoding": describe(beam), "model_sha256": model_sha256}
    return settings | ({"metric": metric} if metric != "wer" else {})  # WER: as tunings were kept before CER


def tuned_schedule(path: Path, model_path: Path, method: str = "auto", k: int | None = None
                   ) -> tuple[str, int, float | None]:
    """(method, steps, lr) that a kept tuning (adapt-eval's --tune-out; a recipe's exp/tune/<method>.json) chose on
    dev speakers, for adapting one more speaker as the report's figures were made. lr None: the method's own rates.
    Refused for another model file or another method than the one tuned."""
    try:
        tuned = json.loads(Path(path).read_text(encoding="utf-8"))
        sha, best = tuned["settings"]["model_sha256"], tuned["best"]
        steps, lr = int(best["steps"]), best["lr"]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path} is not a tuning result of speechmeta adapt-eval ({e!r})") from None
    if sha != file_sha256(model_path):
        raise ValueError(f"{path} was tuned for {tuned.get('model')}, another model file than {model_path}")
    if method not in ("auto", tuned["method"]):
        raise ValueError(f"{path} tuned method '{tuned['method']}', not '{method}'")
    if k is not None and k not in tuned.get("shots", [k]):
        log.warning("%s was tuned for K=%s, not K=%d", path, tuned["shots"], k)
    return tuned["method"], steps, None if lr is None else float(lr)


def load_or_tune(path: Path, **kwargs) -> dict:
    """The tuning result at `path`, computed and written once (again when its grid or dev utterances differ)."""
    if path.is_file():
        kept = json.loads(path.read_text())
        asked = tune_settings(kwargs["shots"], kwargs["seeds"], kwargs["lrs"], kwargs["milestones"],
                              kwargs.get("max_test_utts", 20), kwargs.get("beam"), file_sha256(kwargs["model_path"]),
                              kwargs.get("metric", "wer"))
        if kept.get("settings") == asked:
            return kept
        log.info("%s was tuned with other settings: tuning again", path)
    result = tune(**kwargs)
    atomic_write_text(path, json.dumps(result, indent=1) + "\n")
    return result

