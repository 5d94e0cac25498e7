#!/usr/bin/env python3
"""Long recordings: WER of `speechmeta transcribe` on utterances joined into long files, decoded in one pass against
cut at their pauses (speechmeta.data.segment) against the utterances decoded apart, in one run on the same audio.

Each long file joins `--per-file` utterances of one speaker (drawn at random, seed 0; the files take the speakers in
turn), each followed by `--gap` seconds of pause with noise at `--noise-db` dBFS. `apart` transcribes the same
utterances as separate files, the same per file (so a model with per-speaker CMVN pools the same statistics): the
bound cutting can reach. Prints JSON: words, and the WER of each way.
  python benchmarks/long_audio.py --model recipes/synth/exp_quick/base/average.pt \\
      --data recipes/synth/data_quick/test --lm recipes/synth/data_quick/lang_char/lm3.json \\
      --lexicon recipes/synth/data_quick/lang_char/words.txt --lm-weight 0.3 --word-bonus 1.0 [--files 4]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import jiwer
import numpy as np
import soundfile as sf
import torch

from speechmeta.data.audio import load_audio
from speechmeta.data.datadir import DataDir
from speechmeta.data.segment import SEGMENT_MARGIN_S
from speechmeta.train import load_model
from speechmeta.transcribe import transcribe


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True, help="data dir (its audio and text)")
    p.add_argument("--lm", type=Path)
    p.add_argument("--lexicon", type=Path)
    p.add_argument("--lm-weight", type=float, default=0.5)
    p.add_argument("--word-bonus", type=float, default=0.0)
    p.add_argument("--files", type=int, default=4, help="long files made (the speakers in turn)")
    p.add_argument("--per-file", type=int, default=10, help="utterances of one speaker joined in each")
    p.add_argument("--gaps", type=float, nargs="+", default=[0.25, 0.4], help="seconds of pause between them")
    p.add_argument("--noise-db", type=float, default=-60.0, help="level of the noise in the pauses (dBFS)")
    p.add_argument("--margin", type=float, default=SEGMENT_MARGIN_S, help="quiet kept around each piece (seconds)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = DataDir.load(args.data)
    norm = load_model(args.model)[1].norm  # references as scoring normalizes them
    rng = np.random.default_rng(0)
    spks = sorted(s for s in data.spk2utt if len(data.spk2utt[s]) >= args.per_file)
    if not spks:
        raise SystemExit(f"{args.data}: no speaker has {args.per_file} utterances")
    left = {s: list(rng.permutation(data.spk2utt[s])) for s in spks}
    groups = []
    for f in range(args.files):
        spk = spks[f % len(spks)]
        if len(left[spk]) < args.per_file:
            raise SystemExit(f"{args.data}: speaker {spk} has too few utterances for {args.files} files")
        groups.append([str(u) for u in left[spk][: args.per_file]])
        left[spk] = left[spk][args.per_file:]
    rate = 16000
    audio = {u: load_audio(data.audio(u).path, rate, utt=u) for g in groups for u in g}
    opts = {"lm_path": args.lm, "lexicon_path": args.lexicon, "lm_weight": args.lm_weight,
            "word_bonus": args.word_bonus}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        apart = {}
        for group in groups:  # one call a group: per-speaker CMVN pools the group, as in its long file
            for u in group:
                sf.write(Path(tmp) / f"{u}.wav", audio[u], rate)
            apart.update(transcribe(args.model, [Path(tmp) / f"{u}.wav" for u in group], segment_over=float("inf"),
                                    **opts))
        for gap in args.gaps:
            refs, hyps = {"apart": [], "whole": [], "cut": []}, {"apart": [], "whole": [], "cut": []}
            for f, group in enumerate(groups):
                level, n = 10 ** (args.noise_db / 20), int(gap * rate)
                x = np.concatenate([level * rng.standard_normal(n),
                                    *(np.concatenate([audio[u], level * rng.standard_normal(n)]) for u in group)])
                path = Path(tmp) / f"long{f}.wav"
                sf.write(path, x, rate, subtype="FLOAT")
                ref = " ".join(norm(data.text[u]) for u in group)
                for way, over in (("whole", float("inf")), ("cut", 0.0)):
                    ((_, text),) = transcribe(args.model, [path], segment_over=over, segment_margin=args.margin,
                                              **opts)
                    refs[way].append(ref)
                    hyps[way].append(text)
                refs["apart"].append(ref)
                hyps["apart"].append(" ".join(apart[str(Path(tmp) / f"{u}.wav")] for u in group))
            seconds = [len(sf.read(Path(tmp) / f"long{f}.wav")[0]) / rate for f in range(args.files)]
            row = {"gap_s": gap, "file_seconds": [round(min(seconds), 1), round(max(seconds), 1)],
                   "words": sum(len(r.split()) for r in refs["apart"])}
            for way in ("whole", "cut", "apart"):
                row[f"wer_{way}"] = round(jiwer.wer(refs[way], hyps[way]), 4)
            results.append(row)
    decoding = "beam" if args.lm or args.lexicon else "greedy"
    print(json.dumps({"model": str(args.model), "data": str(args.data), "files": args.files,
                      "per_file": args.per_file, "noise_db": args.noise_db, "margin_s": args.margin,
                      "decoding": decoding, "results": results, "machine": platform.machine(),
                      "torch": torch.__version__}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
