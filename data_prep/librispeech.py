#!/usr/bin/env python3
"""LibriSpeech -> Kaldi-style data dirs, one per subset (train-clean-100 -> OUT/train_clean_100).

Download stage (`--download`): the official OpenSLR tarballs, resumable, each verified against its published SHA-256
before extraction. Parsing reads the release layout `LibriSpeech/<subset>/<spk>/<chapter>/<spk>-<chapter>-<n>.flac`
with `<spk>-<chapter>.trans.txt`, and SPEAKERS.TXT for spk2gender. Utterance ids already start with the speaker id.
Transcripts missing audio, or audio missing a transcript, are listed with the reason.

    python data_prep/librispeech.py --corpus-dir /data/librispeech --download --subsets dev-clean test-clean \\
        --out data/librispeech
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report  # noqa: E402
from download import download, extract  # noqa: E402

from speechmeta.data.datadir import write_data_dir  # noqa: E402
from speechmeta.data.tokenizer import TextNorm  # noqa: E402

BASE_URL = "https://www.openslr.org/resources/12/"
SHA256 = {  # published with torchaudio's LibriSpeech dataset, for the OpenSLR resource 12 tarballs
    "dev-clean": "76f87d090650617fca0cac8f88b9416e0ebf80350acb97b343a85fa903728ab3",
    "dev-other": "12661c48e8c3fe1de2c1caa4c3e135193bfb1811584f11f569dd12645aa84365",
    "test-clean": "39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23",
    "test-other": "d09c181bba5cf717b3dee7d4d592af11a3ee3a09e08ae025c5506f6ebe961c29",
    "train-clean-100": "d4ddd1d5a6ab303066f14971d768ee43278a5f2a0aa43dc716b0e64ecbbbf6e2",
    "train-clean-360": "146a56496217e96c14334a160df97fffedd6e0a04e66b9c5af0d40be3c792ecf",
    "train-other-500": "ddb22f27f96ec163645d53215559df6aa36515f26e01dd70798188350adcb6d2",
}


def download_subset(corpus_dir: Path, subset: str, base_url: str = BASE_URL) -> None:
    """Download and extract one subset into corpus_dir/LibriSpeech/<subset> unless it is there already."""
    if (corpus_dir / "LibriSpeech" / subset / ".extracted").exists():
        return
    archive = download(f"{base_url}{subset}.tar.gz", corpus_dir / f"{subset}.tar.gz", sha256=SHA256[subset])
    extract(archive, corpus_dir)
    (corpus_dir / "LibriSpeech" / subset / ".extracted").touch()


def speaker_genders(speakers_txt: Path) -> dict[str, str]:
    """spk -> 'm'/'f' from SPEAKERS.TXT (`ID | SEX | SUBSET | MINUTES | NAME`, ';' comments)."""
    genders = {}
    if speakers_txt.exists():
        for line in speakers_txt.read_text(encoding="utf-8").splitlines():
            fields = [f.strip() for f in line.split("|")]
            if not line.startswith(";") and len(fields) >= 2 and fields[1] in ("M", "F"):
                genders[fields[0]] = fields[1].lower()
    return genders


def prepare_subset(corpus_dir: Path, subset: str, out: Path) -> tuple[Path, list[tuple[str, str]]]:
    """Write the data dir of one subset; returns it and the skipped (utt, reason) pairs."""
    root = corpus_dir / "LibriSpeech" / subset
    if not root.is_dir():
        raise FileNotFoundError(f"{root} not found: download it (--download) or point --corpus-dir at the folder "
                                "holding LibriSpeech/")
    wav, text, utt2spk, skipped = {}, {}, {}, []
    norm = TextNorm()
    for trans in sorted(root.glob("*/*/*.trans.txt")):
        spk = trans.parent.parent.name
        for line in trans.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            utt, _, words = line.partition(" ")
            audio = trans.parent / f"{utt}.flac"
            if not audio.is_file():
                skipped.append((utt, f"no audio file {audio}"))
                continue
            wav[utt], text[utt], utt2spk[utt] = str(audio.resolve()), norm(words), spk
    listed = set(wav) | {utt for utt, _ in skipped}
    skipped += [(a.stem, "audio file without a transcript line") for a in sorted(root.glob("*/*/*.flac"))
                if a.stem not in listed]
    if not wav:
        raise ValueError(f"{root}: no utterances found")
    genders = speaker_genders(corpus_dir / "LibriSpeech" / "SPEAKERS.TXT")
    extra = {"spk2gender": {s: genders[s] for s in set(utt2spk.values()) if s in genders}} if genders else {}
    write_data_dir(out, wav, text, utt2spk, extra)
    return out, skipped


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus-dir", type=Path, required=True, help="folder holding (or to hold) LibriSpeech/")
    p.add_argument("--subsets", nargs="+", default=["train-clean-100", "dev-clean", "test-clean"],
                   choices=sorted(SHA256))
    p.add_argument("--download", action="store_true", help="download and extract missing subsets first")
    p.add_argument("--base-url", default=BASE_URL, help="mirror of OpenSLR resource 12")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    for subset in args.subsets:
        if args.download:
            download_subset(args.corpus_dir, subset, args.base_url)
        report(*prepare_subset(args.corpus_dir, subset, args.out / subset.replace("-", "_")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
