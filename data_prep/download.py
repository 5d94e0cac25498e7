"""Resumable downloads with checksum verification, and safe archive extraction.

A download goes to `<file>.part`; an interrupted one continues from where it stopped (HTTP Range) on the next call.
Only a file whose checksum matches the published one is renamed to its final name, so a finished file is always a
whole one. Archives are extracted with the `data` filter: no absolute paths, no `..`, no links out of the folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

CHUNK = 1 << 20


def file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: Path, sha256: str | None = None, md5: str | None = None, timeout: float = 60.0) -> Path:
    """Fetch `url` to `dest` unless it is already there and verified; resume a partial `.part` file."""
    dest = Path(dest)
    expected = ("sha256", sha256) if sha256 else ("md5", md5) if md5 else None
    if dest.exists():
        if expected is None or file_digest(dest, expected[0]) == expected[1]:
            return dest
        raise ValueError(f"{dest} exists but its {expected[0]} is not {expected[1]}; delete it to download again")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code != 416:  # 416: nothing left to fetch, the .part is complete
            raise RuntimeError(f"download of {url} failed: HTTP {e.code} {e.reason}") from e
        response = None
    if response is not None:
        with response:
            resumed = response.status == 206
            if have and not resumed:
                print(f"{url}: server ignored the resume request, starting over", file=sys.stderr)
            with open(part, "ab" if resumed else "wb") as f:
                shutil.copyfileobj(response, f, CHUNK)
    if expected is not None:
        got = file_digest(part, expected[0])
        if got != expected[1]:
            part.unlink()
            raise ValueError(f"{url}: {expected[0]} {got} does not match the published {expected[1]}; "
                             "the partial file was removed, run again to download it anew")
    os.replace(part, dest)
    return dest


def extract(archive: Path, into: Path) -> None:
    """Extract a .tar(.gz/.bz2) or .zip archive into `into`, refusing members that would land outside it."""
    into.mkdir(parents=True, exist_ok=True)
    root = into.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                if not (root / name).resolve().is_relative_to(root):
                    raise ValueError(f"{archive}: member '{name}' would be written outside {into}")
            z.extractall(into)
    else:
        with tarfile.open(archive) as t:
            t.extractall(into, filter="data")
