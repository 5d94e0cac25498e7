#!/usr/bin/env python3
"""Free Spoken Digit Dataset -> Kaldi-style data dir.

Reads the release's `recordings/{digit}_{speaker}_{index}.wav` (8 kHz mono; `compute-feats` resamples) and writes
`wav.scp text utt2spk spk2utt` with speaker-prefixed utterance ids (`george-3-07`) and digits as upper-case words.
Files whose names do not follow the pattern are listed with the reason, never dropped silently.

    python data_prep/fsdd.py --recordings ../shared/data/fsdd/recordings --out data/fsdd/all
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report  # noqa: E402

from speechmeta.data.datadir import write_data_dir  # noqa: E402

DIGITS = ["ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"]
NAME = re.compile(r"^(\d)_([A-Za-z0-9]+)_(\d+)\.wav$")


def prepare(recordings: Path, out: Path, speakers: list[str] | None = None) -> dict:
    """Write the data dir; return corpus statistics (speakers, utterances, hours, skipped files)."""
    if not recordings.is_dir():
        raise FileNotFoundError(f"{recordings}: not a directory (expected FSDD's recordings/ folder)")
    wav, text, utt2spk, skipped = {}, {}, {}, []
    seconds = 0.0
    for path in sorted(recordings.iterdir()):
        m = NAME.match(path.name)
        if not m:
            skipped.append((path.name, "name is not {digit}_{speaker}_{index}.wav"))
            continue
        digit, spk, index = int(m.group(1)), m.group(2).lower(), int(m.group(3))
        if speakers and spk not in speakers:
            continue
        try:
            seconds += sf.info(str(path)).duration
        except Exception as e:  # an unreadable file is listed, not silently dropped
            skipped.append((path.name, f"unreadable audio ({e})"))
            continue
        utt = f"{spk}-{digit}-{index:02d}"
        wav[utt], text[utt], utt2spk[utt] = str(path.resolve()), DIGITS[digit], spk
    if not wav:
        raise ValueError(f"{recordings}: no FSDD recordings found")
    write_data_dir(out, wav, text, utt2spk)
    return {"speakers": len(set(utt2spk.values())), "utterances": len(wav), "hours": seconds / 3600,
            "skipped": skipped}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recordings", type=Path, required=True, help="FSDD recordings/ folder")
    p.add_argument("--out", type=Path, required=True, help="output data dir")
    p.add_argument("--speakers", nargs="*", help="only these speakers (default: all)")
    args = p.parse_args(argv)
    report(args.out, prepare(args.recordings, args.out, args.speakers)["skipped"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
