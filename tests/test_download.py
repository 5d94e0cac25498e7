"""Resumable, checksum-verified downloads (from a local HTTP server on loopback) and safe extraction."""

from __future__ import annotations

import hashlib
import http.server
import io
import sys
import tarfile
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data_prep"))
from download import download, extract  # noqa: E402


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves files from `root` with HTTP Range support; counts the bytes it sends."""

    root: Path
    sent = 0

    def do_GET(self):  # noqa: N802
        path = self.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        if "Range" in self.headers:
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        type(self).sent += len(data) - start  # before writing: the client may finish before this thread goes on
        self.wfile.write(data[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    handler = type("Handler", (RangeHandler,), {"root": root, "sent": 0})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/", handler
    httpd.shutdown()


def test_resume_and_verify(server, tmp_path):
    root, url, handler = server
    payload = bytes(range(256)) * 4000
    (root / "a.tar.gz").write_bytes(payload)
    sha = hashlib.sha256(payload).hexdigest()
    dest = tmp_path / "dl" / "a.tar.gz"
    dest.parent.mkdir()
    (dest.parent / "a.tar.gz.part").write_bytes(payload[:300_000])  # an interrupted earlier download
    assert download(url + "a.tar.gz", dest, sha256=sha) == dest
    assert dest.read_bytes() == payload and not (dest.parent / "a.tar.gz.part").exists()
    assert handler.sent == len(payload) - 300_000  # only the missing part was fetched
    download(url + "a.tar.gz", dest, sha256=sha)  # already there and verified: nothing fetched
    assert handler.sent == len(payload) - 300_000


def test_checksum_mismatch_keeps_nothing(server, tmp_path):
    root, url, _ = server
    (root / "b.bin").write_bytes(b"corrupted content")
    dest = tmp_path / "b.bin"
    with pytest.raises(ValueError, match="does not match the published"):
        download(url + "b.bin", dest, sha256="0" * 64)
    assert not dest.exists() and not (tmp_path / "b.bin.part").exists()
    with pytest.raises(RuntimeError, match="HTTP 404"):
        download(url + "missing.bin", tmp_path / "m.bin")


def test_extract_refuses_paths_outside(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as t:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 3
        t.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(tarfile.TarError):
        extract(archive, tmp_path / "into")
    assert not (tmp_path / "escaped.txt").exists()
