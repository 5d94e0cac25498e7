"""Kaldi-style data directories (`wav.scp text utt2spk spk2utt`, optional `segments`): read and validate.

Validation ports the checks of Kaldi's `utils/validate_data_dir.sh`; every problem names its file and line, so a user
can open the file at that line. `wav.scp` holds file paths only: a piped command is refused, never run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from speechmeta.fileio import atomic_write_lines

REQUIRED_FILES = ("wav.scp", "text", "utt2spk", "spk2utt")
# Characters that only make sense in a shell command. A Kaldi `wav.scp` may hold `sox ... |`; we never execute it.
SHELL_MARKERS = ("|", ";", "$(", "`", "&&", ">", "<")


@dataclass(frozen=True)
class Problem:
    """One defect found in a data dir, printed as `file:line: level: message`."""

    path: str
    line: int | None
    level: str  # "error" or "warning"
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.level}: {self.message}"


class DataDirError(ValueError):
    """A data dir that cannot be used; carries every error found."""

    def __init__(self, path: Path, problems: list[Problem]):
        self.problems = problems
        errors = [p for p in problems if p.level == "error"]
        shown = "\n".join(f"  {p}" for p in errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(
            f"data dir {path} has {len(errors)} error(s):\n{shown}{more}\n"
            f"Run 'speechmeta validate-data {path}' for the full list, or 'speechmeta fix-data {path}' to keep only "
            "complete utterances."
        )


@dataclass
class Entry:
    line: int
    key: str
    value: str


@dataclass
class Table:
    """The lines of one Kaldi table file (`key value...`), in file order, with the problems met while reading."""

    path: Path
    entries: list[Entry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def first(self) -> dict[str, Entry]:
        """key -> its first entry (later duplicates are reported by `check_sorted_unique`)."""
        out: dict[str, Entry] = {}
        for e in self.entries:
            out.setdefault(e.key, e)
        return out


def read_table(path: str | os.PathLike) -> Table:
    """Read a Kaldi table, reporting a BOM, CR LF endings, bytes that are not UTF-8 and empty lines."""
    path = Path(path)
    table = Table(path)
    raw = path.read_bytes()

    def problem(line: int, message: str) -> None:
        table.problems.append(Problem(str(path), line, "error", message))

    if raw.startswith(b"\xef\xbb\xbf"):
        problem(1, "file starts with a UTF-8 byte-order mark (BOM); save it without one")
        raw = raw[3:]
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for number, bline in enumerate(lines, 1):
        if bline.endswith(b"\r"):
            problem(number, "Windows line ending (CR LF); convert the file with dos2unix")
            bline = bline[:-1]
        try:
            line = bline.decode("utf-8")
        except UnicodeDecodeError as e:
            problem(number, f"not valid UTF-8 (byte 0x{bline[e.start]:02x} at column {e.start + 1})")
            continue
        if not line.strip():
            problem(number, "empty line")
            continue
        parts = line.split(maxsplit=1)
        table.entries.append(Entry(number, parts[0], parts[1].strip() if len(parts) > 1 else ""))
    return table


def check_sorted_unique(table: Table) -> list[Problem]:
    """Keys must be unique and sorted in byte order (`LC_ALL=C sort`)."""
    problems = []
    seen: dict[str, int] = {}
    previous: str | None = None
    for e in table.entries:
        if e.key in seen:
            problems.append(Problem(str(table.path), e.line, "error",
                                    f"duplicate key '{e.key}' (first on line {seen[e.key]})"))
            continue
        seen[e.key] = e.line
        if previous is not None and e.key.encode() < previous.encode():
            problems.append(Problem(
                str(table.path), e.line, "error",
                f"not sorted: '{e.key}' comes after '{previous}' (sort the file with 'LC_ALL=C sort')",
            ))
        previous = e.key
    return problems


def resolve_wav_entry(value: str, data_dir: Path, audio_root: Path | None = None) -> Path:
    """The audio file a `wav.scp` value names; raises ValueError for a command or a path outside `audio_root`.

    Relative paths resolve against `audio_root` when given, else against the data dir. Nothing is executed.
    """
    if any(marker in value for marker in SHELL_MARKERS):
        raise ValueError(
            f"'{value}' is a command, not a file path; speechmeta never runs commands from a data dir. "
            "Convert the audio to files (e.g. with sox or ffmpeg) and list their paths in wav.scp"
        )
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (audio_root if audio_root is not None else data_dir) / path
    if audio_root is not None:
        resolved, root = path.resolve(), Path(audio_root).resolve()
        if not resolved.is_relative_to(root):
            raise ValueError(f"'{value}' resolves to {resolved}, outside the audio root {root}")
    return path


def check_audio_file(path: Path) -> str | None:
    """Why `path` cannot be read as an audio file, or None when it can be opened."""
    if not path.exists():
        return f"audio file not found: {path}"
    if not path.is_file():
        return f"not a regular file: {path}"
    if not os.access(path, os.R_OK):
        return f"audio file not readable (permissions): {path}"
    return None


@dataclass(frozen=True)
class AudioRef:
    """Where one utterance's audio is: a file, and for `segments` a start/end time in seconds (end None = to EOF)."""

    path: Path
    start: float = 0.0
    end: float | None = None


@dataclass
class DataDir:
    """A validated data dir. Utterances are the keys of `utt2spk`; speakers are the tasks of meta-learning."""

    path: Path
    wav: dict[str, Path]  # utterance (or recording, with segments) -> audio file
    text: dict[str, str]
    utt2spk: dict[str, str]
    spk2utt: dict[str, list[str]]
    segments: dict[str, tuple[str, float, float | None]] | None = None

    @property
    def utts(self) -> list[str]:
        return sorted(self.utt2spk)

    @property
    def spks(self) -> list[str]:
        return sorted(self.spk2utt)

    def audio(self, utt: str) -> AudioRef:
        if self.segments is None:
            return AudioRef(self.wav[utt])
        rec, start, end = self.segments[utt]
        return AudioRef(self.wav[rec], start, end)

    @classmethod
    def load(cls, path: str | os.PathLike, audio_root: str | os.PathLike | None = None,
             need_text: bool = True) -> DataDir:
        """Read a data dir, raising DataDirError with every error if it does not validate (need_text False: an
        untranscribed one, without `text`, is read with no transcripts)."""
        path = Path(path)
        root = Path(audio_root) if audio_root is not None else None
        problems = validate_data_dir(path, root, need_text=need_text)
        if any(p.level == "error" for p in problems):
            raise DataDirError(path, problems)
        wav = {e.key: resolve_wav_entry(e.value, path, root) for e in read_table(path / "wav.scp").entries}
        text = {e.key: e.value for e in read_table(path / "text").entries} if (path / "text").exists() else {}
        utt2spk = {e.key: e.value for e in read_table(path / "utt2spk").entries}
        spk2utt = {e.key: e.value.split() for e in read_table(path / "spk2utt").entries}
        segments = None
        if (path / "segments").exists():
            segments = {}
            for e in read_table(path / "segments").entries:
                rec, start, end = e.value.split()
                segments[e.key] = (rec, float(start), None if float(end) < 0 else float(end))
        return cls(path, wav, text, utt2spk, spk2utt, segments)


def segment_problem(value: str) -> str | None:
    """Why a `segments` value (`rec start end`) is malformed, or None."""
    fields = value.split()
    if len(fields) != 3:
        return f"expected 'utt recording start end', got {len(fields) + 1} fields"
    try:
        start, end = float(fields[1]), float(fields[2])
    except ValueError:
        return f"start/end are not numbers: '{fields[1]} {fields[2]}'"
    if start < 0 or (end >= 0 and end <= start):
        return f"bad times: start {start}, end {end} (need 0 <= start < end, or end = -1 for end of file)"
    return None


def validate_data_dir(path: str | os.PathLike, audio_root: str | os.PathLike | None = None,
                      check_audio: bool = True, need_text: bool = True) -> list[Problem]:
    """Every problem of the data dir at `path`, errors and warnings, each with file and line. need_text False: an
    untranscribed data dir (no `text` file) is whole (for compute-feats, decode and adapt --unsupervised)."""
    path = Path(path)
    root = Path(audio_root) if audio_root is not None else None
    if not path.is_dir():
        return [Problem(str(path), None, "error", "not a directory")]
    problems: list[Problem] = []

    def error(table: Table, line: int | None, message: str) -> None:
        problems.append(Problem(str(table.path), line, "error", message))

    tables: dict[str, Table] = {}
    for name in REQUIRED_FILES + ("segments",):
        if (path / name).exists():
            tables[name] = read_table(path / name)
            problems += tables[name].problems + check_sorted_unique(tables[name])
        elif name in REQUIRED_FILES and (need_text or name != "text"):
            hint = " (regenerate it with 'speechmeta fix-data')" if name == "spk2utt" else ""
            if name == "text":
                hint = (" (without transcripts a data dir serves compute-feats, decode and adapt --unsupervised "
                        "only)")
            problems.append(Problem(str(path / name), None, "error", f"required file missing{hint}"))
    if "utt2spk" not in tables:
        return problems

    utt2spk = tables["utt2spk"].first()
    for e in utt2spk.values():
        if not e.value:
            error(tables["utt2spk"], e.line, f"expected 'utt speaker', got '{e.key}' alone")
        elif len(e.value.split()) != 1:
            error(tables["utt2spk"], e.line, f"utterance '{e.key}': speaker id '{e.value}' contains spaces, which a "
                                             "Kaldi table cannot hold; write it without (e.g. with '_')")
        elif "/" in e.value:
            error(tables["utt2spk"], e.line, f"speaker id '{e.value}' contains '/', which breaks per-speaker paths")
        elif not e.key.startswith(e.value):
            problems.append(Problem(str(tables["utt2spk"].path), e.line, "warning",
                                    f"utterance id '{e.key}' is not prefixed by its speaker id '{e.value}' "
                                    "(Kaldi sorts utt2spk and spk2utt consistently only with such prefixes)"))
    if not utt2spk:
        error(tables["utt2spk"], None, "no utterances")

    if "text" in tables:
        text = tables["text"].first()
        for e in text.values():
            if not e.value:
                error(tables["text"], e.line, f"utterance '{e.key}': empty transcript")
            if e.key not in utt2spk:
                error(tables["text"], e.line, f"utterance '{e.key}' has text but is not in utt2spk")
        for e in utt2spk.values():
            if e.key not in text:
                error(tables["utt2spk"], e.line, f"utterance '{e.key}' has no transcript in text")

    if "wav.scp" in tables:
        wav = tables["wav.scp"].first()
        for e in wav.values():
            if not e.value:
                error(tables["wav.scp"], e.line, f"'{e.key}': no audio path")
                continue
            try:
                audio = resolve_wav_entry(e.value, path, root)
            except ValueError as err:
                error(tables["wav.scp"], e.line, f"'{e.key}': {err}")
                continue
            why = check_audio_file(audio) if check_audio else None
            if why:
                error(tables["wav.scp"], e.line, f"'{e.key}': {why}")
        if "segments" in tables:
            audio_keys, audio_table = tables["segments"].first(), tables["segments"]
            for e in audio_keys.values():
                why = segment_problem(e.value)
                if why:
                    error(audio_table, e.line, f"segment '{e.key}': {why}")
                elif e.value.split()[0] not in wav:
                    error(audio_table, e.line, f"segment '{e.key}': recording '{e.value.split()[0]}' not in wav.scp")
        else:
            audio_keys, audio_table = wav, tables["wav.scp"]
        for e in audio_keys.values():
            if e.key not in utt2spk:
                error(audio_table, e.line, f"utterance '{e.key}' has audio but is not in utt2spk")
        for e in utt2spk.values():
            if e.key not in audio_keys:
                error(tables["utt2spk"], e.line, f"utterance '{e.key}' has no audio (not in {audio_table.path.name})")

    if "spk2utt" in tables:
        spk2utt = tables["spk2utt"].first()
        listed: dict[str, str] = {}
        for e in spk2utt.values():
            for utt in e.value.split():
                listed[utt] = e.key
                if utt2spk.get(utt) is None or utt2spk[utt].value != e.key:
                    error(tables["spk2utt"], e.line,
                          f"speaker '{e.key}' lists '{utt}', but utt2spk maps it to "
                          f"'{utt2spk[utt].value if utt in utt2spk else 'nothing'}' (regenerate with fix-data)")
        for e in utt2spk.values():
            if listed.get(e.key) != e.value:
                error(tables["utt2spk"], e.line,
                      f"utterance '{e.key}' of speaker '{e.value}' is missing from spk2utt (regenerate with fix-data)")

    speakers = {e.value for e in utt2spk.values() if e.value}
    if len(speakers) < 2:
        problems.append(Problem(str(tables["utt2spk"].path), None, "warning",
                                f"{len(speakers)} speaker(s): speaker adaptation and meta-learning need several"))
    return problems


def spk2utt_lines(utt2spk: dict[str, str]) -> list[str]:
    """spk2utt lines (sorted, as Kaldi's `utt2spk_to_spk2utt.pl` makes them) from a utt -> speaker map."""
    spk2utt: dict[str, list[str]] = {}
    for utt in sorted(utt2spk):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return [f"{spk} {' '.join(utts)}" for spk, utts in sorted(spk2utt.items())]


def write_table(path: str | os.PathLike, table: dict[str, str]) -> None:
    """Write `key value` lines sorted in byte order, atomically."""
    atomic_write_lines(path, [f"{key} {table[key]}" for key in sorted(table)])


def write_data_dir(path: str | os.PathLike, wav: dict[str, str], text: dict[str, str] | None,
                   utt2spk: dict[str, str], extra: dict[str, dict[str, str]] | None = None) -> None:
    """Write a data dir from maps keyed by utterance (and `extra` files such as spk2gender), spk2utt derived.
    text None: an untranscribed data dir (a `text` file already there is removed: it would not match)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    write_table(path / "wav.scp", wav)
    if text is not None:
        write_table(path / "text", text)
    else:
        (path / "text").unlink(missing_ok=True)
    write_table(path / "utt2spk", utt2spk)
    atomic_write_lines(path / "spk2utt", spk2utt_lines(utt2spk))
    for name, table in (extra or {}).items():
        write_table(path / name, table)
