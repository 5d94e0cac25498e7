#!/usr/bin/env python3
"""L2-ARCTIC (non-native English, 24 speakers) -> one Kaldi-style data dir.

The corpus is distributed by its authors after a request form, so there is no public URL to fetch: download the
release zip yourself and pass it with `--archive`; it is extracted (with the per-speaker zips inside it) into
--corpus-dir. Parsing reads the per-speaker layout `<SPK>/wav/<name>.wav` + `<SPK>/transcript/<name>.txt` (one line
of text). Utterance `arctic_a0001` of speaker ABA becomes `ABA-arctic_a0001`. Recordings without a transcript and
transcripts without a recording are listed with the reason.

    python data_prep/l2arctic.py --archive l2arctic_release_v5.0.zip --corpus-dir /data/l2arctic --out data/l2arctic
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report  # noqa: E402
from download import extract  # noqa: E402

from speechmeta.data.datadir import write_data_dir  # noqa: E402
from speechmeta.data.tokenizer import TextNorm  # noqa: E402

HOMEPAGE = "https://psi.engr.tamu.edu/l2-arctic-corpus/"


def unpack(archive: Path, corpus_dir: Path) -> None:
    """Extract the release zip, then any per-speaker zips it contains, into corpus_dir."""
    if not archive.is_file():
        raise FileNotFoundError(f"{archive} not found; request the corpus at {HOMEPAGE}")
    extract(archive, corpus_dir)
    for inner in sorted(corpus_dir.rglob("*.zip")):
        if zipfile.is_zipfile(inner) and not (inner.parent / inner.stem / "wav").is_dir():
            extract(inner, inner.parent)


def speaker_dirs(corpus_dir: Path) -> list[Path]:
    return sorted(d.parent for d in corpus_dir.rglob("wav") if d.is_dir() and (d.parent / "transcript").is_dir())


def prepare(corpus_dir: Path, out: Path) -> tuple[Path, list[tuple[str, str]]]:
    spk_dirs = speaker_dirs(corpus_dir)
    if not spk_dirs:
        raise FileNotFoundError(f"{corpus_dir}: no <SPK>/wav + <SPK>/transcript folders (is it L2-ARCTIC?)")
    wav, text, utt2spk, skipped = {}, {}, {}, []
    norm = TextNorm()
    for d in spk_dirs:
        spk = d.name
        audio = {p.stem: p for p in (d / "wav").glob("*.wav")}
        trans = {p.stem: p for p in (d / "transcript").glob("*.txt")}
        for name in sorted(set(audio) | set(trans)):
            utt = f"{spk}-{name}"
            if name not in trans:
                skipped.append((utt, f"no transcript for {audio[name]}"))
            elif name not in audio:
                skipped.append((utt, f"no recording for {trans[name]}"))
            elif not (words := norm(trans[name].read_text(encoding="utf-8", errors="replace"))):
                skipped.append((utt, f"empty transcript {trans[name]}"))
            else:
                wav[utt], text[utt], utt2spk[utt] = str(audio[name].resolve()), words, spk
    write_data_dir(out, wav, text, utt2spk)
    return out, skipped


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus-dir", type=Path, required=True, help="folder holding (or to hold) the speaker folders")
    p.add_argument("--archive", type=Path, help="the release zip to extract first")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if args.archive:
        unpack(args.archive, args.corpus_dir)
    report(*prepare(args.corpus_dir, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
