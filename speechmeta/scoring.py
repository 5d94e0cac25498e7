"""WER scoring with jiwer: Kaldi's %WER line, icefall-style alignments and per-word errors, per-speaker table and a
95% bootstrap confidence interval over speakers (speakers, not utterances, are the unit a user cares about).

`speechmeta score --ref REF --hyp HYP [--utt2spk FILE] --out DIR` writes `wer.json` and `wer.md`.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import jiwer
import numpy as np

from speechmeta.data.datadir import read_table
from speechmeta.fileio import atomic_write_text


def read_text(path: str | os.PathLike) -> dict[str, str]:
    """A Kaldi text file (`utt words...`); an utterance may have an empty hypothesis."""
    table = read_table(path)
    errors = [p for p in table.problems if "empty line" not in p.message]
    if errors:
        raise ValueError(str(errors[0]))
    out: dict[str, str] = {}
    for e in table.entries:
        if e.key in out:
            raise ValueError(f"{path}:{e.line}: duplicate utterance '{e.key}'")
        out[e.key] = e.value
    return out


def _counts(ref: str, hyp: str) -> dict:
    """Word-level sub/del/ins/hits of one utterance, its alignment string and per-word events."""
    ref_words, hyp_words = ref.split(), hyp.split()
    if not ref_words:
        return {"sub": 0, "del": 0, "ins": len(hyp_words), "hits": 0, "ref_words": 0, "hyp_words": len(hyp_words),
                "alignment": " ".join(f"(*->{w})" for w in hyp_words), "events": [("ins", w) for w in hyp_words]}
    out = jiwer.process_words(ref, hyp) if hyp_words else None
    parts, events = [], []
    if out is None:
        parts = [f"({w}->*)" for w in ref_words]
        events = [("del", w) for w in ref_words]
        counts = {"sub": 0, "del": len(ref_words), "ins": 0, "hits": 0}
    else:
        for chunk in out.alignments[0]:
            r = ref_words[chunk.ref_start_idx:chunk.ref_end_idx]
            h = hyp_words[chunk.hyp_start_idx:chunk.hyp_end_idx]
            if chunk.type == "equal":
                parts += r
                events += [("hit", w) for w in r]
            elif chunk.type == "substitute":
                parts += [f"({a}->{b})" for a, b in zip(r, h, strict=True)]
                events += [("sub", a) for a in r] + [("sub_hyp", b) for b in h]
            elif chunk.type == "delete":
                parts += [f"({a}->*)" for a in r]
                events += [("del", a) for a in r]
            else:
                parts += [f"(*->{b})" for b in h]
                events += [("ins", b) for b in h]
        counts = {"sub": out.substitutions, "del": out.deletions, "ins": out.insertions, "hits": out.hits}
    return {**counts, "ref_words": len(ref_words), "hyp_words": len(hyp_words), "alignment": " ".join(parts),
            "events": events}


def _char_errors(ref: str, hyp: str) -> tuple[int, int]:
    """(character edits, reference characters), spaces counted as characters as in icefall's CER."""
    if not ref:
        return len(hyp), 0
    if not hyp:
        return len(ref), len(ref)
    out = jiwer.process_characters(ref, hyp)
    return out.substitutions + out.deletions + out.insertions, len(ref)


def bootstrap_ci(errors: np.ndarray, words: np.ndarray, resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% interval of pooled WER when speakers (rows) are resampled with replacement."""
    if len(errors) < 2:
        rate = float(errors.sum() / max(words.sum(), 1))
        return rate, rate
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(errors), size=(resamples, len(errors)))
    rates = errors[picks].sum(1) / np.maximum(words[picks].sum(1), 1)
    return float(np.percentile(rates, 2.5)), float(np.percentile(rates, 97.5))


def score(ref: dict[str, str], hyp: dict[str, str], utt2spk: dict[str, str] | None = None) -> dict:
    """All figures of a scoring run; every utterance must be on both sides."""
    missing_hyp = sorted(set(ref) - set(hyp))
    missing_ref = sorted(set(hyp) - set(ref))
    if missing_hyp or missing_ref:
        which = [f"no hypothesis for '{u}'" for u in missing_hyp[:5]] + [f"no reference for '{u}'" for u in
                                                                          missing_ref[:5]]
        raise ValueError(f"reference and hypothesis differ: {'; '.join(which)}"
                         f" ({len(missing_hyp)} without hypothesis, {len(missing_ref)} without reference)")
    if not ref:
        raise ValueError("nothing to score: no utterances")
    utt2spk = utt2spk or {u: "all" for u in ref}
    unknown = sorted(set(ref) - set(utt2spk))
    if unknown:
        raise ValueError(f"utterance '{unknown[0]}' has no speaker in utt2spk ({len(unknown)} missing)")
    per_utt, words = {}, Counter()
    totals = Counter()
    for utt in sorted(ref):
        c = _counts(ref[utt], hyp[utt])
        char_err, char_total = _char_errors(ref[utt], hyp[utt])
        per_utt[utt] = {k: c[k] for k in ("sub", "del", "ins", "hits", "ref_words", "hyp_words", "alignment")}
        per_utt[utt]["spk"] = utt2spk[utt]
        per_utt[utt]["char_errors"], per_utt[utt]["chars"] = char_err, char_total
        for kind, word in c["events"]:
            words[(word, kind)] += 1
        for k in ("sub", "del", "ins", "hits", "ref_words", "hyp_words"):
            totals[k] += c[k]
        totals["char_errors"] += char_err
        totals["chars"] += char_total
        totals["sentence_errors"] += int(c["sub"] + c["del"] + c["ins"] > 0)
    errors = totals["sub"] + totals["del"] + totals["ins"]
    n = max(totals["ref_words"], 1)
    speakers = {}
    for spk in sorted(set(utt2spk[u] for u in ref)):
        utts = [u for u in ref if utt2spk[u] == spk]
        e = sum(per_utt[u]["sub"] + per_utt[u]["del"] + per_utt[u]["ins"] for u in utts)
        w = sum(per_utt[u]["ref_words"] for u in utts)
        speakers[spk] = {"utts": len(utts), "ref_words": w, "errors": e, "wer": e / max(w, 1),
                         "char_errors": sum(per_utt[u]["char_errors"] for u in utts),
                         "chars": sum(per_utt[u]["chars"] for u in utts)}
    spk_errors = np.array([s["errors"] for s in speakers.values()], dtype=float)
    spk_words = np.array([s["ref_words"] for s in speakers.values()], dtype=float)
    low, high = bootstrap_ci(spk_errors, spk_words)
    vocabulary = sorted({w for w, _ in words})
    per_word = {w: {"ref": words[(w, "hit")] + words[(w, "sub")] + words[(w, "del")],
                    "hyp": words[(w, "hit")] + words[(w, "sub_hyp")] + words[(w, "ins")],
                    "sub": words[(w, "sub")], "del": words[(w, "del")], "ins": words[(w, "ins")]}
                for w in vocabulary}
    return {
        "wer": errors / n, "cer": totals["char_errors"] / max(totals["chars"], 1),
        "char_errors": totals["char_errors"], "chars": totals["chars"],
        "ser": totals["sentence_errors"] / len(ref), "errors": errors, "ref_words": totals["ref_words"],
        "sub": totals["sub"], "del": totals["del"], "ins": totals["ins"], "hits": totals["hits"],
        "precision": totals["hits"] / max(totals["hyp_words"], 1), "recall": totals["hits"] / n,
        "utterances": len(ref), "speakers": len(speakers), "wer_ci95_over_speakers": [low, high],
        "kaldi": f"%WER {100 * errors / n:.2f} [ {errors} / {totals['ref_words']}, {totals['ins']} ins, "
                 f"{totals['del']} del, {totals['sub']} sub ]",
        "per_speaker": speakers, "per_utterance": per_utt,
        "per_word": {w: s for w, s in per_word.items() if s["sub"] + s["del"] + s["ins"] > 0},
    }


def write_report(result: dict, out: str | os.PathLike) -> None:
    """wer.json (everything) and wer.md (summary, per-speaker table, worst words, alignments) in `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "wer.json", json.dumps(result, indent=1) + "\n")
    low, high = result["wer_ci95_over_speakers"]
    lines = [
        f"# WER: {100 * result['wer']:.2f}%", "", f"`{result['kaldi']}`", "",
        f"CER {100 * result['cer']:.2f}% · SER {100 * result['ser']:.2f}% · word precision "
        f"{100 * result['precision']:.2f}% · recall {100 * result['recall']:.2f}% · 95% CI over "
        f"{result['speakers']} speakers [{100 * low:.2f}, {100 * high:.2f}]% · {result['utterances']} utterances",
        "", "## Per speaker", "", "| speaker | utts | words | errors | WER % |", "|---|---|---|---|---|",
    ]
    lines += [f"| {spk} | {s['utts']} | {s['ref_words']} | {s['errors']} | {100 * s['wer']:.2f} |"
              for spk, s in result["per_speaker"].items()]
    worst = sorted(result["per_word"].items(), key=lambda kv: -(kv[1]["sub"] + kv[1]["del"] + kv[1]["ins"]))[:20]
    lines += ["", "## Words with most errors", "", "| word | ref | hyp | sub | del | ins |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {w} | {s['ref']} | {s['hyp']} | {s['sub']} | {s['del']} | {s['ins']} |" for w, s in worst]
    lines += ["", "## Alignments (errors as (ref->hyp))", "", "```"]
    lines += [f"{utt}: {u['alignment']}" for utt, u in result["per_utterance"].items()]
    lines += ["```", ""]
    atomic_write_text(out / "wer.md", "\n".join(lines))
