#!/usr/bin/env python3
"""A folder of someone's own recordings -> Kaldi-style data dir, for `speechmeta adapt` and `speechmeta decode`.

Audio files are the `.wav` and `.flac` files under AUDIO_DIR (any depth). Each one's transcript is its line in
`--transcripts FILE` (`NAME transcript`, NAME being the file's path under AUDIO_DIR, with or without the extension,
or its name without the extension, which serves every file of that name: a prompt list that each speaker read;
a path wins over a name), else the text of a `.txt` or `.lab` file of the same name beside it.
The speaker is `--spk`, or, without it, each file's first folder under AUDIO_DIR (one folder per person).
Utterance ids are speaker-prefixed (`anna-001`, `anna-day2-003` for `day2/003.wav`), as Kaldi sorts them.
`--untranscribed` takes every readable file and writes no `text`: a data dir for `speechmeta adapt --unsupervised`
(the model's confident hypotheses are its targets) and `speechmeta decode`.

A file without a transcript, with an empty one, or that soundfile cannot open is listed with the reason and left
out, never dropped silently; so is a transcript line naming no file. Two files that would get the same utterance id
(`a.wav` and `a.flac`) are an error naming both. Transcripts are kept as written (one line; the model's text
normalization applies at training and scoring).

    python data_prep/recordings.py --audio-dir ~/anna_recordings --spk anna --out data/anna
    python data_prep/recordings.py --audio-dir people/ --transcripts people/prompts.txt --out data/people
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report  # noqa: E402

from speechmeta.data.datadir import read_table, write_data_dir  # noqa: E402

AUDIO_SUFFIXES = (".wav", ".flac")
TRANSCRIPT_SUFFIXES = (".txt", ".lab")
UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")  # what an id may hold: no spaces (Kaldi tables split at the first one)


def safe_id(part: str) -> str:
    return UNSAFE.sub("_", part).strip("_") or "_"


def audio_files(audio_dir: Path) -> list[Path]:
    return sorted(p for p in audio_dir.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def read_transcripts(path: Path) -> dict[str, str]:
    """NAME -> transcript of a `NAME transcript` file (a line with no transcript maps to '')."""
    if not path.is_file():
        raise FileNotFoundError(f"transcripts file not found: {path}")
    table = read_table(path)  # a byte-order mark and Windows line endings are read past; other bytes are not
    for problem in table.problems:
        if "UTF-8 (byte" in problem.message:
            raise ValueError(f"{problem}: save the transcripts as UTF-8")
    return {e.key: e.value for e in table.entries}


def transcript_of(audio: Path, rel: Path, table: dict[str, str] | None) -> tuple[str | None, str | None]:
    """(transcript, the table key it came from); (None, None) when there is none."""
    if table is not None:
        for key in (rel.as_posix(), rel.with_suffix("").as_posix(), audio.stem):
            if key in table:
                return table[key], key
        return None, None
    for suffix in TRANSCRIPT_SUFFIXES:
        beside = audio.with_suffix(suffix)
        if beside.is_file():
            try:
                return beside.read_bytes().decode("utf-8").removeprefix("\ufeff"), None
            except UnicodeDecodeError as e:
                raise ValueError(f"{beside}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start}); "
                                 "save it as UTF-8") from None
    return None, None


def prepare(audio_dir: Path, out: Path, spk: str | None = None, transcripts: Path | None = None,
            untranscribed: bool = False) -> dict:
    """Write the data dir; return statistics (speakers, utterances, hours, skipped files with their reasons).
    untranscribed: every readable file, no `text` (for adapt --unsupervised, decode)."""
    if untranscribed and transcripts:
        raise ValueError("--untranscribed and --transcripts exclude each other")
    if not audio_dir.is_dir():
        raise FileNotFoundError(f"{audio_dir}: not a directory (expected a folder of .wav/.flac recordings)")
    if spk is not None and (not spk or spk != safe_id(spk)):
        raise ValueError(f"--spk '{spk}': a speaker id holds only letters, digits, '_', '.' and '-'")
    table = read_transcripts(transcripts) if transcripts else None
    files = audio_files(audio_dir)
    if not files:
        raise ValueError(f"{audio_dir}: no .wav or .flac files")
    wav, text, utt2spk, source, used, skipped = {}, {}, {}, {}, set(), []
    seconds = 0.0
    for path in files:
        rel = path.relative_to(audio_dir)
        if spk is None and len(rel.parts) == 1:
            raise ValueError(f"{path}: directly in {audio_dir}, so it has no speaker folder; give --spk (one "
                             "speaker) or put each speaker's files in a folder of their own")
        speaker = spk or safe_id(rel.parts[0])
        rest = rel.with_suffix("").parts[0 if spk else 1:]
        utt = "-".join([speaker, *(safe_id(p) for p in rest)])
        if utt in source:
            raise ValueError(f"{source[utt]} and {path} would both be utterance '{utt}': rename one")
        source[utt] = path
        words = None
        if not untranscribed:
            words, key = transcript_of(path, rel, table)
            used.add(key)
            if words is None:
                where = f"no line in {transcripts}" if table is not None else \
                    f"no {' or '.join(path.with_suffix(s).name for s in TRANSCRIPT_SUFFIXES)} beside it"
                skipped.append((str(rel), f"no transcript ({where})"))
                continue
            words = " ".join(words.split())
            if not words:
                skipped.append((str(rel), "empty transcript"))
                continue
        try:
            seconds += sf.info(str(path)).duration
        except Exception as e:  # an unreadable file is listed, not silently dropped
            skipped.append((str(rel), f"unreadable audio ({e})"))
            continue
        wav[utt], utt2spk[utt] = str(path.resolve()), speaker
        if words is not None:
            text[utt] = words
    for key in sorted(set(table or {}) - used):
        skipped.append((key, f"a line in {transcripts}, but no audio file of that name under {audio_dir}"))
    if not wav:
        wanted = "readable audio" if untranscribed else "both readable audio and a transcript"
        raise ValueError(f"{audio_dir}: no recording has {wanted} ({len(skipped)} left out: first {skipped[0][0]}: "
                         f"{skipped[0][1]})")
    write_data_dir(out, wav, None if untranscribed else text, utt2spk)
    return {"speakers": len(set(utt2spk.values())), "utterances": len(wav), "hours": seconds / 3600,
            "skipped": skipped}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--audio-dir", type=Path, required=True, help="folder of .wav/.flac recordings (any depth)")
    p.add_argument("--out", type=Path, required=True, help="output data dir")
    p.add_argument("--spk", help="the speaker of every file (default: each file's first folder under --audio-dir)")
    p.add_argument("--transcripts", type=Path,
                   help="file of 'NAME transcript' lines (default: a .txt or .lab file beside each recording)")
    p.add_argument("--untranscribed", action="store_true",
                   help="every recording, no text file: for adapt --unsupervised and decode")
    args = p.parse_args(argv)
    try:
        stats = prepare(args.audio_dir, args.out, args.spk, args.transcripts, args.untranscribed)
    except (OSError, ValueError) as e:
        print(f"{p.prog}: error: {e}", file=sys.stderr)
        return 1
    report(args.out, stats["skipped"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
