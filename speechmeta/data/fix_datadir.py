"""`fix-data`: keep only complete utterances of a data dir, back up the originals, report every one dropped.

The counterpart of Kaldi's `utils/fix_data_dir.sh`, but it never drops silently: each dropped utterance comes back
with its reason, and the original files are kept under `.backup/<time>/`.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from speechmeta.data.datadir import (
    check_audio_file,
    read_table,
    resolve_wav_entry,
    segment_problem,
    spk2utt_lines,
    write_table,
)
from speechmeta.fileio import atomic_write_lines

# Other per-utterance and per-speaker files a data dir may hold; they are filtered to what is kept.
UTT_FILES = ("utt2dur", "utt2num_frames", "feats.scp", "utt2lang", "utt2gender", "utt2age")
SPK_FILES = ("spk2gender", "spk2age", "spk2voice")


@dataclass
class FixReport:
    kept: int
    dropped: list[tuple[str, str]]  # (utterance, reason), sorted by utterance
    notes: list[str] = field(default_factory=list)  # line-level repairs (BOM, CR LF, duplicates, undecodable lines)
    backup: Path | None = None


def _first_entries(path: Path, notes: list[str]) -> dict[str, str]:
    """key -> value of the first occurrence; every repaired or skipped line is noted."""
    table = read_table(path)
    notes += [f"{p.path}:{p.line}: {p.message} (repaired or line skipped)" for p in table.problems]
    out: dict[str, str] = {}
    lines: dict[str, int] = {}
    for e in table.entries:
        if e.key in out:
            notes.append(f"{path}:{e.line}: duplicate key '{e.key}' dropped (kept line {lines[e.key]})")
            continue
        out[e.key], lines[e.key] = e.value, e.line
    return out


def fix_data_dir(path: str | os.PathLike, audio_root: str | os.PathLike | None = None) -> FixReport:
    """Rewrite the data dir at `path` with only the utterances that have audio, a transcript and a speaker."""
    path = Path(path)
    root = Path(audio_root) if audio_root is not None else None
    for name in ("wav.scp", "text", "utt2spk"):
        if not (path / name).exists():
            raise FileNotFoundError(f"{path / name}: required file missing; fix-data cannot invent it")
    notes: list[str] = []
    wav = _first_entries(path / "wav.scp", notes)
    text = _first_entries(path / "text", notes)
    utt2spk = _first_entries(path / "utt2spk", notes)
    segments = _first_entries(path / "segments", notes) if (path / "segments").exists() else None

    def audio_problem(key: str) -> str | None:
        if key not in wav:
            return f"recording '{key}' not in wav.scp" if segments is not None else "no audio in wav.scp"
        try:
            return check_audio_file(resolve_wav_entry(wav[key], path, root))
        except ValueError as err:
            return str(err)

    reasons: dict[str, str] = {}
    for utt in sorted(set(utt2spk) | set(text) | set(segments if segments is not None else wav)):
        spk = utt2spk.get(utt, "")
        if utt not in utt2spk:
            reasons[utt] = "no speaker in utt2spk"
        elif len(spk.split()) != 1:
            reasons[utt] = f"malformed utt2spk value '{spk}'"
        elif "/" in spk:
            reasons[utt] = f"speaker id '{spk}' contains '/'"
        elif utt not in text:
            reasons[utt] = "no transcript in text"
        elif not text[utt]:
            reasons[utt] = "empty transcript"
        elif segments is not None:
            if utt not in segments:
                reasons[utt] = "no entry in segments"
            else:
                why = segment_problem(segments[utt]) or audio_problem(segments[utt].split()[0])
                if why:
                    reasons[utt] = why
        else:
            why = audio_problem(utt)
            if why:
                reasons[utt] = why
    kept = sorted(u for u in utt2spk if u not in reasons)

    backup = path / ".backup" / time.strftime("%Y%m%d-%H%M%S")
    suffix = 0
    while backup.exists():
        suffix += 1
        backup = backup.with_name(f"{backup.name.split('.')[0]}.{suffix}")
    backup.mkdir(parents=True)
    names = ("wav.scp", "text", "utt2spk", "spk2utt", "segments") + UTT_FILES + SPK_FILES
    for name in names:
        if (path / name).exists():
            shutil.copy2(path / name, backup / name)

    kept_set = set(kept)
    if segments is not None:
        write_table(path / "segments", {u: segments[u] for u in kept})
        recordings = {segments[u].split()[0] for u in kept}
        write_table(path / "wav.scp", {r: wav[r] for r in recordings})
    else:
        write_table(path / "wav.scp", {u: wav[u] for u in kept})
    write_table(path / "text", {u: text[u] for u in kept})
    kept_utt2spk = {u: utt2spk[u] for u in kept}
    write_table(path / "utt2spk", kept_utt2spk)
    atomic_write_lines(path / "spk2utt", spk2utt_lines(kept_utt2spk))
    speakers = set(kept_utt2spk.values())
    for name, keep in [(n, kept_set) for n in UTT_FILES] + [(n, speakers) for n in SPK_FILES]:
        if (path / name).exists():
            table = _first_entries(path / name, notes)
            write_table(path / name, {k: v for k, v in table.items() if k in keep})
    return FixReport(kept=len(kept), dropped=sorted(reasons.items()), notes=notes, backup=backup)
