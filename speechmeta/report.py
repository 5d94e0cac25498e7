"""The adaptation report: every method side by side for each K, per speaker, with confidence intervals.

Reads the `speechmeta adapt-eval` outputs (METHOD_DIR/k{K}/seed{S}/summary.json), pools each speaker's errors and
words over the seeds, and writes:
- report.json, whose schema is fixed (README "Report format"):
  {"corpus": str, "base_model_sha256": str,
   "results": [{"method", "k", "wer", "cer", "wer_ci95": [lo, hi], "speakers", "words", "adapt_seconds_per_speaker"}],
   "per_speaker": [{"spk", "method", "k", "wer", "words"}]}      (WER as a fraction; k = 0 for `none`)
  (pooled cross-validation folds: base_model_sha256 holds each fold's base model's SHA-256, joined by commas)
- report.md: the method × K table (WER, CER, relative WER reduction vs `none`, 95% CI over speakers, speakers,
  words, adaptation seconds per speaker), who gains and who loses, and the per-speaker table;
- wer_vs_k.png: WER against K, one line per method.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from speechmeta.fileio import atomic_open, atomic_write_text
from speechmeta.scoring import bootstrap_ci

ORDER = ["none", "finetune", "lhuc", "adapter", "fomaml", "reptile", "metasgd", "maml"]


def collect(method_dirs: list[Path]) -> list[dict]:
    """Every summary.json under the method dirs."""
    found = []
    for d in method_dirs:
        found += [json.loads(p.read_text()) for p in sorted(Path(d).glob("k*/seed*/summary.json"))]
    if not found:
        where = ", ".join(map(str, method_dirs))
        raise FileNotFoundError(f"no adaptation results (k*/seed*/summary.json) under {where}")
    return found


def aggregate(summaries: list[dict]) -> tuple[list[dict], list[dict]]:
    """(results, per_speaker) in the report.json schema: speakers pooled over seeds."""
    groups: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for s in summaries:
        groups[(s["method"], s["k"])].append(s)
    results, per_speaker = [], []
    rank = {m: i for i, m in enumerate(ORDER)}
    for (method, k), runs in sorted(groups.items(), key=lambda kv: (rank.get(kv[0][0], 99), kv[0][0], kv[0][1])):
        errors, words, cerr, chars = defaultdict(int), defaultdict(int), 0, 0
        for run in runs:
            for spk, row in run["per_speaker"].items():
                errors[spk] += row["errors"]
                words[spk] += row["ref_words"]
            cerr += run["char_errors"]
            chars += run["chars"]
        spks = sorted(errors)
        e = np.array([errors[s] for s in spks], dtype=float)
        w = np.array([words[s] for s in spks], dtype=float)
        low, high = bootstrap_ci(e, w)
        results.append({"method": method, "k": int(k), "wer": float(e.sum() / max(w.sum(), 1)),
                        "cer": cerr / max(chars, 1), "wer_ci95": [float(low), float(high)], "speakers": len(spks),
                        "words": int(w.sum()), "adapt_seconds_per_speaker":
                            float(np.mean([r["adapt_seconds_per_speaker"] for r in runs]))})
        per_speaker += [{"spk": s, "method": method, "k": int(k), "wer": errors[s] / max(words[s], 1),
                         "words": words[s]} for s in spks]
    return results, per_speaker


def markdown(corpus: str, sha: str, results: list[dict], per_speaker: list[dict]) -> str:
    none = next((r["wer"] for r in results if r["method"] == "none"), None)
    lines = [f"# Speaker adaptation report: {corpus}", "", f"Base model SHA-256 `{sha}`. WER and CER over all test "
             "utterances of the held-out speakers (pooled over seeds); the interval is a 95% bootstrap over "
             "speakers.", "", "| method | K | WER % | CER % | rel. WER reduction vs none | 95% CI (WER %) | speakers "
             "| words | adapt s/speaker |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        rel = f"{100 * (none - r['wer']) / none:+.1f}%" if none and r["method"] != "none" else ""
        lines.append(f"| {r['method']} | {r['k']} | {100 * r['wer']:.2f} | {100 * r['cer']:.2f} | {rel} | "
                     f"[{100 * r['wer_ci95'][0]:.2f}, {100 * r['wer_ci95'][1]:.2f}] | {r['speakers']} | "
                     f"{r['words']} | {r['adapt_seconds_per_speaker']:.2f} |")
    base = {p["spk"]: p["wer"] for p in per_speaker if p["method"] == "none"}
    columns = [(r["method"], r["k"]) for r in results]
    if base:
        lines += ["", "## Who gains, who loses (speakers whose WER is lower / higher than unadapted)", "",
                  "| method | K | gain | lose | same |", "|---|---|---|---|---|"]
        for method, k in columns:
            if method == "none":
                continue
            mine = {p["spk"]: p["wer"] for p in per_speaker if p["method"] == method and p["k"] == k}
            diff = [mine[s] - base[s] for s in mine if s in base]
            lines.append(f"| {method} | {k} | {sum(d < 0 for d in diff)} | {sum(d > 0 for d in diff)} | "
                         f"{sum(d == 0 for d in diff)} |")
    table = defaultdict(dict)
    for p in per_speaker:
        table[p["spk"]][(p["method"], p["k"])] = p
    lines += ["", "## Per speaker (WER %)", "", "| speaker | words | " + " | ".join(f"{m} K={k}" for m, k in columns)
              + " |", "|---|---|" + "---|" * len(columns)]
    for spk in sorted(table):
        words = next(iter(table[spk].values()))["words"]
        cells = [f"{100 * table[spk][c]['wer']:.1f}" if c in table[spk] else "" for c in columns]
        lines.append(f"| {spk} | {words} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(results: list[dict], path: Path, corpus: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ks = sorted({r["k"] for r in results})
    for method in dict.fromkeys(r["method"] for r in results):
        rows = sorted((r for r in results if r["method"] == method), key=lambda r: r["k"])
        if method == "none":
            ax.hlines(100 * rows[0]["wer"], min(ks), max(ks), colors="black", linestyles="dashed", label="none")
        else:
            ax.errorbar([r["k"] for r in rows], [100 * r["wer"] for r in rows], marker="o", label=method, capsize=3,
                        yerr=np.array([[100 * (r["wer"] - r["wer_ci95"][0]), 100 * (r["wer_ci95"][1] - r["wer"])]
                                       for r in rows]).T.clip(min=0))
    ax.set_xlabel("K (adaptation utterances)")
    ax.set_ylabel("WER %")
    ax.set_xticks(ks)
    ax.set_title(f"{corpus}: WER vs K (95% CI over speakers)")
    ax.legend()
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)


def write_report(corpus: str, base_model: str | os.PathLike | list, method_dirs: list[Path], out: Path) -> dict:
    """report.json, report.md and wer_vs_k.png in `out`; returns the report.json content. A report that pools
    cross-validation folds (method dirs of several folds, each fold's speakers its own) has one base model per
    fold: `base_model` is then their list, recorded as their SHA-256s joined by commas."""
    from speechmeta.profile import file_sha256

    results, per_speaker = aggregate(collect(method_dirs))
    models = base_model if isinstance(base_model, list) else [base_model]
    sha = ",".join(file_sha256(m) for m in models)
    report = {"corpus": corpus, "base_model_sha256": sha, "results": results, "per_speaker": per_speaker}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "report.json", json.dumps(report, indent=1) + "\n")
    atomic_write_text(out / "report.md", markdown(corpus, sha, results, per_speaker))
    plot(results, out / "wer_vs_k.png", corpus)
    return report
