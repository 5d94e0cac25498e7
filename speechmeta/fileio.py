"""Atomic file writing: a reader never sees a half-written file, an interrupted writer leaves the old one intact."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside `path`; on success fsync it and rename it over `path`.

    On an exception the temporary file is removed and `path` keeps its previous content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding, newline=None if binary else "\n") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _create_temp(path: Path) -> tuple[int, str]:
    """A new file `.NAME.XXXXXXXX.tmp` beside `path`, with the permissions `open(path, "w")` would leave: those of
    the file it replaces, else 0o666 less the umask (mkstemp's 0o600 would hide every output from the user's group)."""
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
        with contextlib.suppress(OSError):  # no file to replace (or a file system without modes)
            os.fchmod(fd, stat.S_IMODE(os.stat(path).st_mode))
        return fd, tmp
    raise FileExistsError(f"no free temporary name beside {path}")


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_lines(path: str | os.PathLike, lines: list[str]) -> None:
    """Write `lines` (without newlines), one per line, atomically."""
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def append_csv_row(path: str | os.PathLike, fields: list[str], row: dict) -> None:
    """Append one row to a metrics CSV, writing the header first when the file is new."""
    import csv

    new = not Path(path).exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fields)
        if new:
            writer.writeheader()
        writer.writerow(row)


def remove_stale_temps(directory: str | os.PathLike) -> list[Path]:
    """Delete the temporary files (`.NAME.XXXX.tmp`) that killed atomic writes left in `directory`; returns them.
    Only while no other process writes there (a run owns its experiment folder)."""
    stale = sorted(Path(directory).glob(".*.tmp"))
    for p in stale:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    return stale


def keep_csv_rows(path: str | os.PathLike, keep, fields: list[str] | None = None) -> list[dict]:
    """Rewrite a metrics CSV with only its complete rows for which `keep(row)` is true: a resumed run drops the rows
    it is about to write again (those after its checkpoint) and a row a kill cut short. `fields`: the header to write
    (a column the file lacks is left empty in its rows), else the file's own. Returns the rows kept."""
    import csv
    import io

    path = Path(path)
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # the last line was cut short
    reader = csv.DictReader(io.StringIO(text))
    rows = [r for r in reader if None not in r and None not in r.values() and keep(r)]
    fields = fields or reader.fieldnames or []
    rows = [{f: r.get(f, "") for f in fields} for r in rows]
    out = io.StringIO()
    writer = csv.DictWriter(out, fields, lineterminator="\r\n")
    if fields:
        writer.writeheader()
        writer.writerows(rows)
    atomic_write_text(path, out.getvalue())
    return rows


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
