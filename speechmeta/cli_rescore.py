"""The two-pass decoding subcommands of `speechmeta`: nbest, rescore (registered by cli.py; see rescore.py)."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_nbest(args: argparse.Namespace) -> int:
    from speechmeta.decode import BeamOptions
    from speechmeta.rescore import nbest_lists, write_nbest

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    options = BeamOptions(args.lm, args.lexicon, args.lm_weight, args.word_bonus, args.beam)
    lists, refs = nbest_lists(args.model, args.data, options, args.n, args.device, second_model=args.second_model)
    setup = {"model": str(args.model), "data": str(args.data), "n": args.n, **options.describe(),
             **({"second_model": str(args.second_model)} if args.second_model else {})}
    args.out.mkdir(parents=True, exist_ok=True)
    write_nbest(args.out / "nbest.json", lists, refs, setup)
    sizes = [len(h) for h in lists.values()]
    print(f"{args.out}/nbest.json: {len(lists)} utterances, {sum(sizes) / max(len(sizes), 1):.1f} hypotheses each "
          f"on average (both heads' {args.n} best, pooled)")
    return 0


def cmd_rescore(args: argparse.Namespace) -> int:
    from speechmeta.fileio import atomic_write_lines
    from speechmeta.rescore import read_nbest, rescore, tune, write_hyps

    test = read_nbest(args.nbest)
    if args.tune_nbest:
        (a, w, b), lines = tune(read_nbest(args.tune_nbest), args.aux_weights, args.lm_weights, args.word_bonuses,
                                args.tune_metric)
        lines.append(f"best on {args.tune_nbest} (dev {args.tune_metric}): aux_weight={a} lm_weight={w} "
                     f"word_bonus={b}")
        args.out.mkdir(parents=True, exist_ok=True)
        atomic_write_lines(args.out / "rescore_tuning.txt", lines)
        print(lines[-1])
    else:
        a, w, b = args.aux_weights[0], args.lm_weights[0], args.word_bonuses[0]
    write_hyps(args.out, rescore(test["nbest"], a, w, b), test["refs"])
    print(f"{args.out}/hyp.txt: {len(test['nbest'])} utterances rescored with aux_weight={a} lm_weight={w} "
          f"word_bonus={b}")
    return 0


def register(add) -> None:
    from speechmeta.cli import add_search_args

    p = add("nbest", cmd_nbest, "N-best lists of two CTC heads (of one model, or of two models), for rescoring",
            "First pass of two-pass decoding, for a model trained with --aux-units, or for two models trained on the "
            "same features with different units (--second-model; e.g. phones and characters): each head's prefix "
            "beam search (LM, lexicon, weights as in decode) lists its N best word sequences; the pooled "
            "hypotheses, with their CTC log-likelihoods under both heads and their LM log-probability, go to "
            "OUT/nbest.json. The second model's head takes the auxiliary head's place in rescore.")
    p.add_argument("--model", type=Path, required=True,
                   help="checkpoint (with an auxiliary head, unless --second-model is given)")
    p.add_argument("--second-model", type=Path,
                   help="a second checkpoint whose head is the second head (the model's own auxiliary head is "
                        "then not used)")
    p.add_argument("--data", type=Path, required=True, help="data dir with features")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--n", type=int, default=50, help="hypotheses kept from each head's search")
    add_search_args(p)

    p = add("rescore", cmd_rescore, "pick each utterance's best hypothesis of an N-best file",
            "Second pass: each hypothesis of NBEST (speechmeta nbest) is scored (1 - a) * main head CTC + a * "
            "auxiliary head CTC + w * LM + b * words. With --tune-nbest (a development set's N-best file) every "
            "combination of the weight lists is tried there and the lowest dev WER (then CER; or CER then WER: "
            "--tune-metric cer) is used, listed in "
            "OUT/rescore_tuning.txt; otherwise the first of each list. Writes OUT/hyp.txt and OUT/ref.txt.")
    p.add_argument("--nbest", type=Path, required=True, help="nbest.json to rescore")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--tune-nbest", type=Path, help="a development set's nbest.json to choose the weights on")
    p.add_argument("--tune-metric", choices=["wer", "cer"], default="wer", help="what the weights minimize on it")
    p.add_argument("--aux-weights", type=float, nargs="+", default=[0.3], help="auxiliary head weights a")
    p.add_argument("--lm-weights", type=float, nargs="+", default=[0.5], help="LM weights w")
    p.add_argument("--word-bonuses", type=float, nargs="+", default=[0.0], help="word bonuses b")
