#!/usr/bin/env python3
"""Long recordings: WER of `speechmeta transcribe` on utterances joined into long files, decoded in one pass against
cut at their pauses (speechmeta.data.segment) against the utterances decoded apart, in one run on the same audio.

Each long file joins `--per-file` consecutive utterances of a data dir (sorted ids: one speaker's, for a corpus
with enough utterances per speaker), each followed by `--gap` seconds of silence with noise `--noise-db` below
full scale. Prints JSON: words, and the WER of each way (`apart` is the bound cutting can reach).
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
    p.add_argument("--files", type=int, default=4, help="long files made")
    p.add_argument("--per-file", type=int, default=10, help="utterances joined in each")
    p.add_argument("--gaps", type=float, nargs="+", default=[0.25, 0.4], help="seconds of pause between them")
    p.add_argument("--noise-db", type=float, default=-60.0, help="level of the noise in the pauses (dBFS)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = DataDir.load(args.data)
    norm = load_model(args.model)[1].norm  # references as scoring normalizes them
    utts = data.utts[: args.files * args.per_file]
    rate = 16000
    audio = {u: load_audio(data.audio(u).path, rate, utt=u) for u in utts}
    opts = {"lm_path": args.lm, "lexicon_path": args.lexicon, "lm_weight": args.lm_weight,
            "word_bonus": args.word_bonus}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        apart_files = []
        for u in utts:
            sf.write(Path(tmp) / f"{u}.wav", audio[u], rate)
            apart_files.append(Path(tmp) / f"{u}.wav")
        apart = dict(transcribe(args.model, apart_files, segment_over=float("inf"), **opts))
        rng = np.random.default_rng(0)
        for gap in args.gaps:
            refs, hyps = {"apart": [], "whole": [], "cut": []}, {"apart": [], "whole": [], "cut": []}
            for f in range(args.files):
                group = utts[f * args.per_file: (f + 1) * args.per_file]
                level, n = 10 ** (args.noise_db / 20), int(gap * rate)
                x = np.concatenate([level * rng.standard_normal(n),
                                    *(np.concatenate([audio[u], level * rng.standard_normal(n)]) for u in group)])
                path = Path(tmp) / f"long{f}.wav"
                sf.write(path, x, rate, subtype="FLOAT")
                ref = " ".join(norm(data.text[u]) for u in group)
                for way, over in (("whole", float("inf")), ("cut", 0.0)):
                    ((_, text),) = transcribe(args.model, [path], segment_over=over, **opts)
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
    print(json.dumps({"model": str(args.model), "data": str(args.data), "files": args.files,
                      "per_file": args.per_file, "noise_db": args.noise_db, "decoding": "beam" if args.lm or
                      args.lexicon else "greedy", "results": results, "machine": platform.machine(),
                      "torch": torch.__version__}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
