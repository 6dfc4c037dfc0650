"""dcl_data.fetch against a local HTTP server (127.0.0.1, a thread): a good file, a corrupt one,
a transfer that breaks off mid-way and resumes with a Range request, a server that ignores
Range, a 404, and a declaration whose sha256 is unknown."""

from __future__ import annotations

import hashlib
import http.server
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from dcl_data import DownloadError
from dcl_data.fetch import fetch_url, part_path

REPO = Path(__file__).resolve().parents[1]
PAYLOAD = bytes(range(256)) * 600  # 153,600 bytes: several read chunks' worth is not needed
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at several paths, each misbehaving in its own way; logs every request."""

    requests: list = []
    truncated_once: set = set()

    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, data: bytes, *, honour_range: bool = True, cut: int | None = None):
        start = 0
        header = self.headers.get("Range")
        if header and honour_range:
            start = int(header.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body if cut is None else body[:cut])

    def do_GET(self):
        _Handler.requests.append((self.path, self.headers.get("Range")))
        if self.path == "/good.bin":
            self._send(PAYLOAD)
        elif self.path == "/corrupt.bin":
            self._send(PAYLOAD[:-1] + b"\x00")
        elif self.path == "/flaky.bin":
            # The first transfer stops half-way (Content-Length promises all of it).
            if self.path not in _Handler.truncated_once:
                _Handler.truncated_once.add(self.path)
                self._send(PAYLOAD, cut=len(PAYLOAD) // 2)
                self.close_connection = True
            else:
                self._send(PAYLOAD)
        elif self.path == "/norange.bin":
            self._send(PAYLOAD, honour_range=False)
        else:
            self.send_error(404, "Not Found")


@contextmanager
def local_server(handler):
    """An HTTP server on 127.0.0.1 answering with ``handler`` in a thread; yields its base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture()
def server():
    _Handler.requests = []
    _Handler.truncated_once = set()
    with local_server(_Handler) as url:
        yield url


def test_good_file_is_fetched_verified_and_reused(server, tmp_path):
    out = tmp_path / "pretrained" / "w.pth"
    assert fetch_url(f"{server}/good.bin", out, SHA) == out
    assert out.read_bytes() == PAYLOAD and not part_path(out).exists()
    n = len(_Handler.requests)
    fetch_url(f"{server}/good.bin", out, SHA.upper())  # present and verified: no request
    assert len(_Handler.requests) == n


def test_corrupt_file_is_refused_and_nothing_is_kept(server, tmp_path):
    out = tmp_path / "w.pth"
    with pytest.raises(DownloadError, match=r"corrupt\.bin: sha256 [0-9a-f]{64} differs from the "
                                            r"declared .*; the download was deleted$") as err:
        fetch_url(f"{server}/corrupt.bin", out, SHA)
    assert "\n" not in str(err.value)
    assert not out.exists() and not part_path(out).exists()


def test_broken_transfer_keeps_the_part_and_resumes_with_a_range_request(server, tmp_path):
    out = tmp_path / "w.pth"
    with pytest.raises(DownloadError, match=r"broke off after 76800 of 153600 bytes; run again"):
        fetch_url(f"{server}/flaky.bin", out, SHA)
    assert part_path(out).stat().st_size == len(PAYLOAD) // 2 and not out.exists()
    fetch_url(f"{server}/flaky.bin", out, SHA)
    assert out.read_bytes() == PAYLOAD and not part_path(out).exists()
    assert _Handler.requests[-1] == ("/flaky.bin", f"bytes={len(PAYLOAD) // 2}-")


def test_complete_part_is_accepted_after_416(server, tmp_path):
    out = tmp_path / "w.pth"
    part_path(out).write_bytes(PAYLOAD)  # killed between the last byte and the rename
    fetch_url(f"{server}/good.bin", out, SHA)
    assert out.read_bytes() == PAYLOAD and not part_path(out).exists()


def test_server_ignoring_range_restarts_the_part(server, tmp_path):
    out = tmp_path / "w.pth"
    part_path(out).write_bytes(b"stale bytes of some other file")
    fetch_url(f"{server}/norange.bin", out, SHA)
    assert out.read_bytes() == PAYLOAD


def test_existing_file_with_another_digest_is_left_alone(server, tmp_path):
    out = tmp_path / "w.pth"
    out.write_bytes(b"not the weights")
    with pytest.raises(DownloadError, match=r"w\.pth: sha256 .* differs from the declared .*; "
                                            r"delete the file to fetch it again"):
        fetch_url(f"{server}/good.bin", out, SHA)
    assert out.read_bytes() == b"not the weights" and _Handler.requests == []


def test_404_is_one_line(server, tmp_path):
    with pytest.raises(DownloadError, match=r"missing\.bin: HTTP 404 Not Found$"):
        fetch_url(f"{server}/missing.bin", tmp_path / "w.pth", SHA)
    assert not (tmp_path / "w.pth.part").exists()


@pytest.mark.parametrize("declared", ["UNKNOWN", "", None])
def test_unknown_sha256_is_refused_before_any_request(server, tmp_path, declared):
    with pytest.raises(DownloadError, match=r"refusing to fetch .*good\.bin: its sha256 is not "
                                            r"known \(config\.yaml weights\.msra_r50\.sha256 is"):
        fetch_url(f"{server}/good.bin", tmp_path / "w.pth", declared, label="msra_r50")
    assert _Handler.requests == []


def test_malformed_sha256_is_refused(server, tmp_path):
    with pytest.raises(DownloadError, match=r"is not a sha256 digest"):
        fetch_url(f"{server}/good.bin", tmp_path / "w.pth", "0676ba61")


def test_cli_prints_one_error_line(server, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dcl_data.fetch", f"{server}/corrupt.bin", str(tmp_path / "w.pth"),
         "--sha256", SHA, "--label", "x"],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
