"""The `speechmeta` command. Each subcommand only parses its arguments and calls library functions.

Run `speechmeta --help`, or `speechmeta SUBCOMMAND --help` for one subcommand.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from speechmeta import __version__

log = logging.getLogger("speechmeta")


def setup_logging(log_file: Path | None = None) -> None:
    """Messages to stderr, and with `log_file` also appended there with timestamps."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root.addHandler(console)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="YAML config (e.g. recipes/<corpus>/conf/*.yaml)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="dotted config overrides, e.g. fbank.num_mel_bins=40 text_norm.case=lower")


def cmd_validate_data(args: argparse.Namespace) -> int:
    from speechmeta.data.datadir import validate_data_dir

    problems = validate_data_dir(args.dir, args.audio_root, check_audio=not args.no_audio_check,
                                 need_text=not args.untranscribed)
    for p in problems:
        print(p)
    errors = sum(p.level == "error" for p in problems)
    warnings = len(problems) - errors
    print(f"{args.dir}: {'INVALID' if errors else 'OK'}: {errors} error(s), {warnings} warning(s)")
    return 1 if errors else 0


def cmd_fix_data(args: argparse.Namespace) -> int:
    from speechmeta.data.fix_datadir import fix_data_dir

    report = fix_data_dir(args.dir, args.audio_root)
    for note in report.notes:
        print(f"repaired: {note}")
    for utt, reason in report.dropped:
        print(f"dropped {utt}: {reason}")
    print(f"{args.dir}: kept {report.kept} utterance(s), dropped {len(report.dropped)}; "
          f"originals backed up in {report.backup}")
    return 0


def cmd_combine_data(args: argparse.Namespace) -> int:
    from speechmeta.data.combine import combine_data_dirs
    from speechmeta.data.datadir import DataDir

    for note in combine_data_dirs(args.srcs, args.dst):
        print(note)
    data = DataDir.load(args.dst)
    print(f"{args.dst}: {len(data.utts)} utterances of {len(data.spks)} speakers from {len(args.srcs)} data dirs")
    return 0


def cmd_compute_feats(args: argparse.Namespace) -> int:
    from speechmeta.config import load_config
    from speechmeta.data.compute_feats import compute_feats

    cfg = load_config(path=args.config, overrides=args.overrides)
    setup_logging(args.dir / "log" / "compute-feats.log")
    log.info("compute-feats %s: %s, nj=%d", args.dir, cfg.fbank, args.nj)
    s = compute_feats(args.dir, cfg.fbank, nj=args.nj, skip_bad=args.skip_bad, audio_root=args.audio_root,
                      progress=not args.no_progress)
    log.info("%s: %d utterances, %d frames (%.2f h), %d skipped as bad%s; %d chunks (%d from an earlier run) in "
             "%.1f s by %d process(es)", args.dir, s.utts, s.frames, s.frames * cfg.fbank.frame_shift_ms / 3.6e6,
             len(s.bad), f" (listed in {args.dir / 'bad_utts.txt'})" if s.bad else "", s.chunks, s.chunks_reused,
             s.seconds, s.jobs)
    return 0


def cmd_make_units(args: argparse.Namespace) -> int:
    from speechmeta.config import load_config
    from speechmeta.data.datadir import read_table
    from speechmeta.data.phone_tokenizer import PhoneTokenizer, read_pron_lexicon
    from speechmeta.data.tokenizer import CharTokenizer

    cfg = load_config(path=args.config, overrides=args.overrides)
    texts = [e.value for e in read_table(args.dir / "text").entries]
    if args.lexicon:
        tokenizer = PhoneTokenizer.build(read_pron_lexicon(args.lexicon, cfg.text_norm), cfg.text_norm, texts)
        kind, outside = f"phones of {args.lexicon}'s {len(tokenizer.lexicon)} words", "word(s) outside the lexicon"
    else:
        tokenizer = CharTokenizer.build(texts, cfg.text_norm)
        kind, outside = "characters", "character(s) outside the units"
    out = args.out or args.dir / "units.txt"
    tokenizer.save(out)
    print(f"{out}: {len(tokenizer)} units ({kind}) for {len(texts)} transcripts of {args.dir} ({cfg.text_norm})")
    for other in [args.dir] + args.check if args.lexicon else args.check:
        oov = tokenizer.count_oov(e.value for e in read_table(other / "text").entries)
        total = sum(oov.values())
        listing = ", ".join(f"'{c}' x{n}" for c, n in oov.most_common(20))
        print(f"{other}: {total} {outside}{': ' + listing if total else ''}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from speechmeta.scoring import read_text, score, write_report

    utt2spk = read_text(args.utt2spk) if args.utt2spk else None
    result = score(read_text(args.ref), read_text(args.hyp), utt2spk)
    write_report(result, args.out)
    low, high = result["wer_ci95_over_speakers"]
    print(f"{result['kaldi']}  CER {100 * result['cer']:.2f}%  "
          f"95% CI over {result['speakers']} speakers [{100 * low:.2f}, {100 * high:.2f}]%  -> {args.out}/wer.md")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from speechmeta.config import load_config
    from speechmeta.train import train

    cfg = load_config(path=args.config, overrides=args.overrides)
    setup_logging(args.exp_dir / "log" / "train.log")
    log.info("speechmeta %s", " ".join(sys.argv[1:]))
    result = train(cfg, args.train_dir, args.valid_dir, args.units, args.exp_dir, resume=args.resume,
                   init_from=args.init_from, progress=not args.no_progress, aux_units=args.aux_units)
    log.info("done: %s", result)
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    from speechmeta.decode import decode

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    result = decode(args.model, args.data, args.out, args.method, args.beam, args.lm, args.lm_weight,
                    args.word_bonus, args.lexicon, args.device, profile=args.profile)
    print(f"{args.out}/hyp.txt: {result['utterances']} utterances, {result['audio_seconds']:.1f} s of audio, "
          f"decoded in {result['decode_seconds']:.2f} s, RTF {result['rtf']:.4f} ({args.method})")
    return 0


def add_search_args(p: argparse.ArgumentParser) -> None:
    """The beam search's options (decode, nbest) and where the network runs."""
    p.add_argument("--beam", type=int, default=10, help="beam size")
    p.add_argument("--lm", type=Path, help="word n-gram LM (JSON from train-lm)")
    p.add_argument("--lm-weight", type=float, default=0.5)
    p.add_argument("--word-bonus", type=float, default=0.0, help="score added per word (offsets the LM's cost)")
    p.add_argument("--lexicon", type=Path, help="allowed words (first column of each line)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")


def cmd_train_lm(args: argparse.Namespace) -> int:
    from speechmeta.lm import NgramLM
    from speechmeta.scoring import read_text

    sentences = list(read_text(args.text).values())
    lm = NgramLM.train(sentences, args.order, args.smoothing)
    lm.save(args.out)
    print(f"{args.out}: {args.order}-gram LM ({args.smoothing}) from {len(sentences)} sentences, {len(lm.vocab)} words")
    return 0


def cmd_meta_train(args: argparse.Namespace) -> int:
    from speechmeta.config import load_config
    from speechmeta.meta_train import meta_train

    cfg = load_config(path=args.config, overrides=args.overrides)
    setup_logging(args.exp_dir / "log" / "meta-train.log")
    log.info("speechmeta %s", " ".join(sys.argv[1:]))
    result = meta_train(cfg, args.base, args.train_dir, args.valid_dir, args.exp_dir, resume=args.resume,
                        progress=not args.no_progress)
    log.info("done: %s", result)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="speechmeta",
        description="Few-shot speaker adaptation of CTC speech recognition by meta-learning across speakers. "
                    "Data dirs are Kaldi-style (wav.scp text utt2spk spk2utt).",
    )
    parser.add_argument("--version", action="version", version=f"speechmeta {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)

    def add(name: str, func: Callable[[argparse.Namespace], int], help: str, description: str):
        p = sub.add_parser(name, help=help, description=description)
        p.set_defaults(func=func)
        return p

    audio_root_help = "resolve relative wav.scp paths against this folder (default: the data dir) and refuse " \
                      "paths outside it"
    p = add("validate-data", cmd_validate_data, "check a Kaldi-style data dir",
            "Check a data dir as Kaldi's validate_data_dir.sh does: required files, LC_ALL=C sorting, unique keys, "
            "utt2spk/spk2utt consistency, audio and text for every utterance, no piped commands in wav.scp. "
            "Every problem is printed as file:line. Exit status 1 when there are errors.")
    p.add_argument("dir", type=Path, help="data dir")
    p.add_argument("--audio-root", type=Path, help=audio_root_help)
    p.add_argument("--no-audio-check", action="store_true", help="do not check that audio files exist")
    p.add_argument("--untranscribed", action="store_true",
                   help="no text file needed (a data dir for compute-feats, decode and adapt --unsupervised)")

    p = add("fix-data", cmd_fix_data, "keep only complete utterances of a data dir",
            "Rewrite a data dir keeping only utterances that have a speaker, a non-empty transcript and a readable "
            "audio file; sort, de-duplicate, regenerate spk2utt. Originals are backed up under DIR/.backup/ and "
            "every dropped utterance is printed with its reason.")
    p.add_argument("dir", type=Path, help="data dir")
    p.add_argument("--audio-root", type=Path, help=audio_root_help)

    p = add("combine-data", cmd_combine_data, "several data dirs as one (Kaldi's combine_data.sh)",
            "Write the utterances of SRC... into DST. Utterance ids must be unique across the sources; relative "
            "wav.scp and feats.scp paths are rewritten (features are not copied); an optional file (utt2dur, "
            "spk2gender, ...) is kept only when every source has it; per-speaker CMVN statistics are summed. "
            "Sources with features from different filterbank configs are refused.")
    p.add_argument("dst", type=Path, help="new data dir")
    p.add_argument("srcs", type=Path, nargs="+", metavar="SRC", help="source data dirs (at least two)")

    p = add("compute-feats", cmd_compute_feats, "log-mel features + CMVN stats for a data dir",
            "Compute Kaldi-compatible log-mel filterbanks (80 bins, 25 ms / 10 ms by default) into DIR/fbank/, "
            "with DIR/feats.scp, DIR/utt2num_frames and DIR/cmvn.npz (global and per-speaker statistics). "
            "Audio is mixed to mono and resampled to fbank.sample_rate. An interrupted run resumes; a changed "
            "config restarts. Log: DIR/log/compute-feats.log.")
    p.add_argument("dir", type=Path, help="data dir")
    p.add_argument("--nj", type=int, default=1, help="number of parallel worker processes (default 1; they start "
                   "only when the chunks timed in the first process say they would finish sooner: a process takes "
                   "seconds to start)")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip unreadable audio instead of stopping, listing each in DIR/bad_utts.txt")
    p.add_argument("--audio-root", type=Path, help=audio_root_help)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_config_args(p)

    p = add("make-units", cmd_make_units, "build the CTC units (units.txt): characters, or phones of a lexicon",
            "Build the CTC character units from DIR/text after text normalization (text_norm.* in the config): "
            "units.txt with <blk>=0, <unk>, <space>, then the characters; text_norm.json beside it. With --lexicon "
            "(Kaldi lexicon.txt, WORD PHONE ...) the units are its phones, stress marks dropped, and the lexicon "
            "is written beside units.txt: training targets are each word's first pronunciation. "
            "--check DIR2 counts the characters (words, with --lexicon) of other data dirs outside the units.")
    p.add_argument("dir", type=Path, help="training data dir")
    p.add_argument("--out", type=Path, help="output units file (default DIR/units.txt)")
    p.add_argument("--check", type=Path, action="append", default=[], metavar="DIR",
                   help="report characters of DIR/text outside the units (repeatable)")
    p.add_argument("--lexicon", type=Path, help="pronunciation lexicon: phone units instead of characters")
    _add_config_args(p)
    p = add("train", cmd_train, "initialization learning: train the conformer CTC model",
            "Ordinary multi-speaker CTC training (initialization learning). Writes EXP/epoch-N.pt each epoch (and "
            "step-N.pt every train.checkpoint_every steps), EXP/average.pt (mean of the last train.average_last "
            "epochs), EXP/metrics.csv, EXP/config.yaml, EXP/units.txt and EXP/log/train.log.")
    p.add_argument("--train-dir", type=Path, required=True, help="training data dir (with features)")
    p.add_argument("--valid-dir", type=Path, required=True, help="validation data dir (with features)")
    p.add_argument("--units", type=Path, required=True, help="units.txt (speechmeta make-units)")
    p.add_argument("--aux-units", type=Path,
                   help="a second units.txt (e.g. characters beside phones): an auxiliary CTC head on the same "
                        "encoder, its loss weighted by train.aux_ctc_weight; decode --nbest rescores with it")
    p.add_argument("--exp-dir", type=Path, required=True, help="experiment folder")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in EXP")
    p.add_argument("--init-from", type=Path, help="start from this checkpoint's weights (e.g. synthetic pretraining)")
    p.add_argument("--no-progress", action="store_true")
    _add_config_args(p)

    p = add("meta-train", cmd_meta_train, "iterative learning: meta-train across speakers",
            "Meta-train a base model with each training speaker as a task (meta.algorithm: fomaml, reptile, metasgd, "
            "maml; meta.param_set: all, encoder, lhuc, adapter, norm, bias). Writes EXP/meta.pt (meta-learned "
            "initialization and adaptation rule), EXP/step-N.pt, EXP/metrics.csv (query loss before/after "
            "adaptation) and EXP/log/meta-train.log.")
    p.add_argument("--base", type=Path, required=True, help="base checkpoint (speechmeta train)")
    p.add_argument("--train-dir", type=Path, required=True, help="training speakers (data dir with features)")
    p.add_argument("--valid-dir", type=Path, required=True, help="validation speakers, for the query-loss curve")
    p.add_argument("--exp-dir", type=Path, required=True)
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in EXP")
    p.add_argument("--no-progress", action="store_true")
    _add_config_args(p)

    p = add("decode", cmd_decode, "transcribe a data dir with a trained model",
            "Decode every utterance of a data dir (with features) using a checkpoint (e.g. EXP/average.pt): greedy, "
            "or CTC prefix beam search with an optional word n-gram LM (speechmeta train-lm) and lexicon. Writes "
            "OUT/hyp.txt and OUT/ref.txt (Kaldi format; no ref.txt for a data dir without text) and prints the "
            "real-time factor.")
    p.add_argument("--model", type=Path, required=True, help="checkpoint")
    p.add_argument("--data", type=Path, required=True, help="data dir with features")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--method", choices=["greedy", "beam"], default="greedy")
    add_search_args(p)
    p.add_argument("--profile", type=Path, help="speaker profile (speechmeta adapt) to decode with")

    p = add("train-lm", cmd_train_lm, "train a word n-gram LM on transcripts",
            "Train a word n-gram language model (interpolated Witten-Bell, or modified Kneser-Ney) on a Kaldi text "
            "file, for beam search.")
    p.add_argument("--text", type=Path, required=True, help="Kaldi text (utt words...)")
    p.add_argument("--order", type=int, default=3)
    p.add_argument("--smoothing", choices=["witten_bell", "kneser_ney"], default="witten_bell")
    p.add_argument("--out", type=Path, required=True, help="output JSON")

    p = add("score", cmd_score, "WER/CER of hypotheses against references",
            "Score Kaldi-format hypothesis text against reference text (keyed by utterance id; an utterance "
            "missing from either side is an error). Prints the Kaldi-style %WER line; writes OUT/wer.json and "
            "OUT/wer.md with CER, sentence error rate, sub/del/ins, word precision and recall, per-speaker WER, a "
            "95% bootstrap interval over speakers, per-word error counts and per-utterance alignments.")
    p.add_argument("--ref", type=Path, required=True, help="reference text (utt words...)")
    p.add_argument("--hyp", type=Path, required=True, help="hypothesis text (utt words...)")
    p.add_argument("--utt2spk", type=Path, help="utterance -> speaker, for the per-speaker table and interval")
    p.add_argument("--out", type=Path, required=True, help="output folder")

    from speechmeta.cli_adapt import register
    from speechmeta.cli_rescore import register as register_rescore

    register(add)
    register_rescore(add)
    return parser


def audio_hint(args: argparse.Namespace) -> str:
    """How to go on past unreadable audio, for a command that has a way: compute-feats skips it (--skip-bad); a
    command that computes a data dir's features for itself (adapt) can be given them computed so. transcribe has
    none: its error names the file."""
    if hasattr(args, "skip_bad"):
        return "\n(--skip-bad skips such utterances, listing them in bad_utts.txt)"
    if getattr(args, "data", None) is not None:
        return (f"\n(speechmeta compute-feats {args.data} --skip-bad computes the features of the others, listing "
                f"such utterances in {args.data}/bad_utts.txt; then run this again)")
    return ""


def main(argv: list[str] | None = None) -> int:
    # Every error a user can cause is a ValueError (DataDirError, AudioError, ConfigError, CheckpointError,
    # ProfileError...); only AudioError's hint needs its class. Importing no more keeps torch out of the commands
    # that do not use it (score, validate-data, report...): a recipe calls them many times.
    from speechmeta.data.audio import AudioError

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # Overrides may come anywhere, also after options (`DIR --nj 2 fbank.num_mel_bins=40`).
    if hasattr(args, "overrides"):
        args.overrides += [a for a in extra if "=" in a and not a.startswith("-")]
        extra = [a for a in extra if a not in args.overrides]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not logging.getLogger().handlers:
        setup_logging()
    try:
        return args.func(args)
    except (OSError, ValueError) as e:
        if os.environ.get("SPEECHMETA_DEBUG"):
            raise
        hint = audio_hint(args) if isinstance(e, AudioError) else ""
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            hint = ("\n(files are written to a temporary name and renamed when complete: the finished ones, earlier "
                    "checkpoints included, are intact; free some space and rerun, with --resume where there is one)")
        print(f"speechmeta {args.command}: error: {e}{hint}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
