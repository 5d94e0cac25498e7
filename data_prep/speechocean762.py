#!/usr/bin/env python3
"""speechocean762 -> Kaldi-style data dirs with speaker-prefixed utterance ids.

Reads the release layout: `train/` and `test/` Kaldi dirs (`wav.scp text utt2spk spk2utt spk2age spk2gender`) whose
`wav.scp` paths are relative to the corpus root (`WAVE/SPEAKERxxxx/xxxxxxxxx.WAV`). Works on the original WAV
release and on the FLAC copy of the train split (its `wav.scp` names `.flac` files). Utterance `000010011` of speaker
`0001` becomes `0001-000010011`; spk2age and spk2gender are kept; transcripts are normalized (upper case, no
punctuation). Files listed but missing are reported with the reason, never dropped silently.

    python data_prep/speechocean762.py --corpus-dir ../shared/data/speechocean762 --out data/so762
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report  # noqa: E402

from speechmeta.data.datadir import read_table, write_data_dir  # noqa: E402
from speechmeta.data.tokenizer import TextNorm  # noqa: E402


def _table(path: Path) -> dict[str, str]:
    table = read_table(path)
    if table.problems:
        raise ValueError(f"{table.problems[0]}")
    return {e.key: e.value for e in table.entries}


def prepare_split(corpus: Path, split: str, out: Path) -> tuple[Path, list[tuple[str, str]]]:
    """Convert `corpus/split` into `out`; returns the data dir and the (utt, reason) pairs skipped."""
    src = corpus / split
    for name in ("wav.scp", "text", "utt2spk"):
        if not (src / name).exists():
            raise FileNotFoundError(f"{src / name} not found: is {corpus} the speechocean762 release folder?")
    wav_scp, text, utt2spk = _table(src / "wav.scp"), _table(src / "text"), _table(src / "utt2spk")
    norm = TextNorm()
    wav, new_text, new_utt2spk, skipped = {}, {}, {}, []
    for utt in sorted(utt2spk):
        spk = utt2spk[utt]
        if utt not in wav_scp or utt not in text:
            skipped.append((utt, "no wav.scp entry" if utt not in wav_scp else "no transcript"))
            continue
        path = (corpus / wav_scp[utt]).resolve()
        if not path.is_file():
            skipped.append((utt, f"audio file not found: {path}"))
            continue
        new = f"{spk}-{utt}"
        wav[new], new_text[new], new_utt2spk[new] = str(path), norm(text[utt]), spk
    speakers = set(new_utt2spk.values())
    extra = {name: {k: v for k, v in _table(src / name).items() if k in speakers}
             for name in ("spk2age", "spk2gender") if (src / name).exists()}
    write_data_dir(out, wav, new_text, new_utt2spk, extra)
    return out, skipped


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus-dir", type=Path, required=True, help="release folder holding train/ (and test/)")
    p.add_argument("--out", type=Path, required=True, help="writes OUT/train and, when the release has it, OUT/test")
    args = p.parse_args(argv)
    splits = [s for s in ("train", "test") if (args.corpus_dir / s).is_dir()]
    if not splits:
        raise SystemExit(f"{args.corpus_dir}: no train/ or test/ folder; pass the speechocean762 release folder")
    for split in splits:
        report(*prepare_split(args.corpus_dir, split, args.out / split))
    if "test" not in splits:
        print(f"{args.corpus_dir} has no test/ split (the FLAC train-only copy): hold speakers out of train with "
              "data_prep/splits.py speakers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
