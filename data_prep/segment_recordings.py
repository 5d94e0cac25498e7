#!/usr/bin/env python3
"""Long recordings -> utterance-sized pieces: a data dir with a Kaldi `segments` file, cut at the pauses.

Each utterance of DATA is taken as one recording (a lecture, a minute of dictation) and cut where it pauses
(speechmeta.data.segment, as `speechmeta transcribe` cuts long files). OUT gets `wav.scp` (the recordings, absolute
paths), `segments` (`{utt}-{start}-{end} {utt} START END`, times in seconds; ids carry centiseconds, as Kaldi's),
`utt2spk` and `spk2utt` (each piece keeps its recording's speaker), and no `text`: a recording's transcript cannot be
split by time. The result serves `compute-feats`, `decode` and `adapt --unsupervised`. A recording with no speech
(no loud frame) is listed and left out.

    python data_prep/segment_recordings.py --data data/lectures --out data/lectures_seg [--max-seconds 20]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report  # noqa: E402

from speechmeta.data.audio import load_audio  # noqa: E402
from speechmeta.data.datadir import DataDir, write_data_dir  # noqa: E402
from speechmeta.data.segment import SEGMENT_MARGIN_S, pause_segments  # noqa: E402

RATE = 16000  # the rate the pauses are found at; the times written hold for the file at any rate


def prepare(data_dir: Path, out: Path, max_seconds: float = 20.0, min_pause: float = 0.3,
            margin: float = SEGMENT_MARGIN_S) -> dict:
    """Write OUT; return statistics (recordings, pieces, skipped recordings with their reasons)."""
    data = DataDir.load(data_dir, need_text=False)
    if data.segments is not None:
        raise ValueError(f"{data_dir} already has a segments file: cut the recordings it names instead")
    if (out / "text").exists():
        raise ValueError(f"{out} holds a text file: write the pieces to a new folder")
    wav, segments, utt2spk, skipped = {}, {}, {}, []
    for rec in data.utts:
        samples = load_audio(data.wav[rec], RATE, utt=rec)
        pieces = pause_segments(samples, RATE, max_seconds, min_pause, margin=margin)
        if not pieces or not samples.any():
            skipped.append((rec, "no speech found (silent)"))
            continue
        wav[rec] = str(data.wav[rec].resolve())
        for a, b in pieces:
            start, end = a / RATE, b / RATE
            utt = f"{rec}-{round(start * 100):07d}-{round(end * 100):07d}"
            segments[utt] = f"{rec} {start:.2f} {end:.2f}"
            utt2spk[utt] = data.utt2spk[rec]
    if not segments:
        raise ValueError(f"{data_dir}: no recording has speech to cut")
    write_data_dir(out, wav, None, utt2spk, extra={"segments": segments})
    return {"recordings": len(wav), "pieces": len(segments), "skipped": skipped}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="data dir whose utterances are long recordings")
    p.add_argument("--out", type=Path, required=True, help="output data dir (with segments, without text)")
    p.add_argument("--max-seconds", type=float, default=20.0, help="longest piece (default 20)")
    p.add_argument("--min-pause", type=float, default=0.3, help="shortest pause cut at, seconds (default 0.3)")
    p.add_argument("--margin", type=float, default=SEGMENT_MARGIN_S,
                   help=f"quiet kept around each piece's speech, seconds (default {SEGMENT_MARGIN_S:g})")
    args = p.parse_args(argv)
    try:
        stats = prepare(args.data, args.out, args.max_seconds, args.min_pause, args.margin)
    except (OSError, ValueError) as e:
        print(f"{p.prog}: error: {e}", file=sys.stderr)
        return 1
    print(f"{args.out}: {stats['pieces']} pieces of {stats['recordings']} recordings")
    report(args.out, stats["skipped"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
