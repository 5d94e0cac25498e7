"""The adaptation subcommands of `speechmeta`: adapt, transcribe, adapt-eval, report (registered by cli.py)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger("speechmeta")


def cmd_adapt(args: argparse.Namespace) -> int:
    from speechmeta.adapt import adapt_to_speaker

    method, steps, lr = args.method, args.steps, args.lr
    if args.tuned:
        from speechmeta.adapt_eval import tuned_schedule

        if steps is not None or lr is not None:
            raise ValueError("give either --tuned or --steps/--lr, not both")
        method, steps, lr = tuned_schedule(args.tuned, args.model, method, args.k)
        log.info("%s: %s, %d steps, lr %s (tuned on dev speakers)", args.tuned, method, steps, lr)
    support = None
    if args.support_list:
        support = Path(args.support_list).read_text(encoding="utf-8").split()  # one utt a line, or an spk2utt line
    info = adapt_to_speaker(args.model, args.data, args.spk, args.out, k=args.k, support_list=support,
                            method=method, steps=steps, lr=lr, unsupervised=args.unsupervised,
                            min_confidence=args.min_confidence, device=args.device, seed=args.seed)
    print(f"{args.out}: {info['method']} profile of speaker {info['spk']} from {info['k']} utterance(s), "
          f"{info['steps']} steps, {info['adapt_seconds']:.2f} s")
    return 0


def cmd_transcribe(args: argparse.Namespace) -> int:
    from speechmeta.transcribe import transcribe

    for path, text in transcribe(args.model, args.files, args.profile, args.device, args.lm, args.lexicon,
                                 args.lm_weight, args.word_bonus, args.beam, segment_over=args.segment_over,
                                 segment_margin=args.segment_margin):
        print(f"{path} {text}".rstrip())
    return 0


def cmd_adapt_eval(args: argparse.Namespace) -> int:
    from speechmeta.adapt import load_adapter
    from speechmeta.adapt_eval import evaluate, load_or_tune
    from speechmeta.cli import setup_logging
    from speechmeta.decode import BeamOptions

    setup_logging(args.out / "log" / "adapt-eval.log")
    log.info("speechmeta %s", " ".join(sys.argv[1:]))
    steps, lr = args.steps, args.lr
    beam = None
    if args.lm or args.lexicon:
        beam = BeamOptions(args.lm, args.lexicon, args.lm_weight, args.word_bonus, args.beam)
    if not args.tune_data or args.method == "none":
        summaries = evaluate(load_adapter(args.model, args.method, steps, lr, args.device), args.data, args.fewshot,
                             args.shots, args.seeds, args.out, args.unsupervised, args.min_confidence,
                             progress=not args.no_progress, beam=beam)
    else:  # tuned on dev speakers: once for all K (errors summed), or for each K alone (--tune-per-k)
        summaries, seen = [], set()
        tune_out = args.tune_out or args.out / "tune.json"
        for shots in ([[k] for k in args.shots] if args.tune_per_k else [args.shots]):
            path = tune_out.with_name(f"{tune_out.stem}.k{shots[0]}{tune_out.suffix}") if args.tune_per_k else tune_out
            tuned = load_or_tune(path, model_path=args.model, method=args.method, data_dir=args.tune_data,
                                 fewshot=args.tune_fewshot, shots=shots, seeds=args.tune_seeds or args.seeds[:1],
                                 lrs=args.tune_lrs or [None], milestones=args.tune_steps,
                                 max_test_utts=args.tune_max_utts, device=args.device, metric=args.tune_metric,
                                 progress=not args.no_progress, beam=beam)
            steps, lr = tuned["best"]["steps"], tuned["best"]["lr"]
            log.info("tuned on %s for K=%s: %d steps, lr %s", args.tune_data, shots, steps, lr)
            ad = load_adapter(args.model, args.method, steps, lr, args.device)
            for s in evaluate(ad, args.data, args.fewshot, shots, args.seeds, args.out, args.unsupervised,
                              args.min_confidence, progress=not args.no_progress, beam=beam):
                if (s["k"], s["seed"]) not in seen:  # a meta model's K=0 comes with every K
                    seen.add((s["k"], s["seed"]))
                    summaries.append(s)
    for s in summaries:
        print(f"{s['method']} K={s['k']} seed={s['seed']}: WER {100 * s['wer']:.2f}% CER {100 * s['cer']:.2f}% "
              f"({s['speakers']} speakers, {s['adapt_seconds_per_speaker']:.2f} s/speaker)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from speechmeta.report import write_report

    report = write_report(args.corpus, list(args.base_model), args.methods, args.out)
    print(f"{args.out}/report.md")
    ks = sorted({r["k"] for r in report["results"]})
    methods = list(dict.fromkeys(r["method"] for r in report["results"]))
    cell = {(r["method"], r["k"]): r for r in report["results"]}
    print("WER % (CER %)".ljust(16) + "".join(f"K={k}".rjust(16) for k in ks))
    for m in methods:
        cells = [f"{100 * cell[m, k]['wer']:.2f} ({100 * cell[m, k]['cer']:.2f})" if (m, k) in cell else ""
                 for k in ks]
        print(m.ljust(16) + "".join(c.rjust(16) for c in cells))
    if args.json:
        print(json.dumps(report["results"], indent=1))
    return 0


def register(add) -> None:
    """Add the subcommands through cli.build_parser's `add(name, func, help, description)`."""
    p = add("adapt", cmd_adapt, "adapt a model to one speaker from K utterances -> speaker profile",
            "Adapt a model to speaker SPK of a data dir from K of its utterances (or those in --support-list), "
            "with the model's meta-learned rule (a meta-train output) or a baseline method (--method finetune, "
            "lhuc, adapter with --steps and --lr), and write a speaker profile: a safetensors file with only the "
            "adapted tensors plus metadata (base-model SHA-256, method, K, steps, rates, utterance ids). Features "
            "are computed into the data dir if it has none. --unsupervised adapts from the model's own "
            "hypotheses of confident utterances, transcripts unused.")
    p.add_argument("--model", type=Path, required=True, help="checkpoint (meta.pt, or a base model with --method)")
    p.add_argument("--data", type=Path, required=True, help="data dir holding the speaker's utterances")
    p.add_argument("--spk", help="speaker id (utt2spk); may be left out when the data dir holds one speaker")
    p.add_argument("--k", type=int, help="number of support utterances, drawn from --seed")
    p.add_argument("--support-list", type=Path, help="file of utterance ids to adapt from (instead of --k)")
    p.add_argument("--out", type=Path, required=True, help="speaker profile to write (.safetensors)")
    p.add_argument("--method", default="auto", help="auto (the model's meta rule), none, finetune, lhuc, adapter, "
                                                     "meta")
    p.add_argument("--steps", type=int, help="adaptation steps (default: the rule's)")
    p.add_argument("--lr", type=float, help="adaptation rate (default: the rule's)")
    p.add_argument("--tuned", type=Path, help="take the method, steps and rate from this tuning of the same model on "
                                              "dev speakers (a recipe's exp/tune/<method>.json)")
    p.add_argument("--unsupervised", action="store_true", help="adapt from the model's own hypotheses")
    p.add_argument("--min-confidence", type=float, default=0.7, help="unsupervised: keep utterances this confident")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--seed", type=int, default=0)

    from speechmeta.data.segment import SEGMENT_MARGIN_S, SEGMENT_OVER_S  # numpy only: no torch for the parser

    p = add("transcribe", cmd_transcribe, "print the text of audio files",
            "Transcribe WAV/FLAC files with a model, optionally with a speaker profile (speechmeta adapt). Prints "
            "'FILE text' per file. Greedy CTC, or prefix beam search when --lm or --lexicon is given. A model with "
            "per-speaker CMVN uses the profile's statistics, or pools them over the files given (one speaker's).")
    p.add_argument("files", nargs="+", type=Path, help="audio files")
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--profile", type=Path, help="speaker profile")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--lm", type=Path, help="word n-gram LM (JSON from train-lm)")
    p.add_argument("--lexicon", type=Path, help="allowed words")
    p.add_argument("--lm-weight", type=float, default=0.5)
    p.add_argument("--word-bonus", type=float, default=0.0)
    p.add_argument("--beam", type=int, default=10, help="beam size (with --lm or --lexicon)")
    p.add_argument("--segment-over", type=float, default=SEGMENT_OVER_S, metavar="SECONDS",
                   help="cut files longer than this at their pauses into pieces of at most 20 s, decoded one by one "
                        f"(default {SEGMENT_OVER_S:g}; 0: every file; inf: none)")
    p.add_argument("--segment-margin", type=float, default=SEGMENT_MARGIN_S, metavar="SECONDS",
                   help=f"quiet kept around each piece's speech (default {SEGMENT_MARGIN_S:g}, for models of "
                        "sentences; less for a model of tightly cut words)")

    p = add("adapt-eval", cmd_adapt_eval, "adapt every held-out speaker for each K and score (a report's data)",
            "For every speaker of a held-out data dir, every K of --shots and every seed: adapt from the speaker's "
            "support utterances of the few-shot split files and decode its test utterances (greedy, or prefix beam "
            "search when --lm or --lexicon is given: tune its weights first, on dev data), scoring "
            "each (K, seed) into OUT/k{K}/seed{S}/. With --tune-data, the steps (and for baselines the rate) are "
            "first chosen on those dev speakers, never on the test speakers (OUT/tune.json). A rerun keeps "
            "finished parts.")
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--method", default="auto", help="auto, none, finetune, lhuc, adapter, meta")
    p.add_argument("--data", type=Path, required=True, help="held-out speakers' data dir (with features)")
    p.add_argument("--fewshot", type=Path, required=True, help="few-shot split folder of --data")
    p.add_argument("--shots", type=int, nargs="+", default=[5, 10])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, help="adaptation steps (without tuning)")
    p.add_argument("--lr", type=float, help="adaptation rate (without tuning)")
    p.add_argument("--tune-data", type=Path, help="dev speakers' data dir to tune steps/rate on")
    p.add_argument("--tune-fewshot", type=Path, help="few-shot split folder of --tune-data")
    p.add_argument("--tune-lrs", type=float, nargs="+", help="rates to try (default: the method's own)")
    p.add_argument("--tune-steps", type=int, nargs="+", default=[1, 3, 5, 10, 20], help="step counts to try")
    p.add_argument("--tune-max-utts", type=int, default=20,
                   help="test utterances per dev speaker scored while tuning (raise it for one-word utterances)")
    p.add_argument("--tune-metric", choices=["wer", "cer"], default="wer",
                   help="what the tuning minimizes on dev (cer: finer-grained where dev has few words)")
    p.add_argument("--tune-seeds", type=int, nargs="+",
                   help="support draws of --tune-fewshot to tune on, errors summed (default: the first of --seeds)")
    p.add_argument("--tune-per-k", action="store_true",
                   help="tune steps (and rate) for each K alone instead of once for all K (OUT/tune.k{K}.json)")
    p.add_argument("--tune-out", type=Path, help="where the tuning result is kept (default OUT/tune.json); an "
                                                  "existing one is reused")
    p.add_argument("--unsupervised", action="store_true")
    p.add_argument("--min-confidence", type=float, default=0.7)
    p.add_argument("--lm", type=Path, help="word n-gram LM (JSON from train-lm): beam search")
    p.add_argument("--lexicon", type=Path, help="allowed words: beam search")
    p.add_argument("--lm-weight", type=float, default=0.5)
    p.add_argument("--word-bonus", type=float, default=0.0)
    p.add_argument("--beam", type=int, default=10, help="beam size")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-progress", action="store_true")

    p = add("report", cmd_report, "the method x K report of adapt-eval outputs",
            "Pool adapt-eval outputs (one folder per method) over seeds and write OUT/report.json (fixed schema), "
            "OUT/report.md (method x K table with CER, relative WER reduction vs none, 95% CI over speakers, "
            "words, adaptation time; who gains/loses; per-speaker table) and OUT/wer_vs_k.png; prints the table.")
    p.add_argument("methods", nargs="+", type=Path, help="adapt-eval output folders")
    p.add_argument("--corpus", required=True, help="corpus name for the report")
    p.add_argument("--base-model", type=Path, nargs="+", required=True,
                   help="the base model (its SHA-256 is recorded); one per fold when the dirs pool several folds")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
