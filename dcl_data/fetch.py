"""Resumable, checksum-verified download of one file over HTTP(S) (pretrained weights).

The file grows as ``OUT.part``; an interrupted transfer continues from the bytes already there
(an HTTP ``Range`` request; a server that ignores it sends the whole file, which then replaces
the part). Once complete its sha256 is checked against the declared digest and only then is it
renamed to ``OUT`` (:func:`os.replace`, atomic on one file system). A digest mismatch deletes the
part, so nothing that failed the check is kept or later resumed from. The sha256 is mandatory:
a declaration without a known digest (``UNKNOWN``) is refused before any byte is fetched.

CLI (one line on stderr and exit status 1 on any failure)::

    python -m dcl_data.fetch URL OUT --sha256 HEX [--label NAME]
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

from .download import sha256_of
from .errors import DownloadError

#: What config.yaml says where a file's sha256 has not been established.
UNKNOWN_SHA256 = "UNKNOWN"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


def check_sha256_declared(sha256: Optional[str], url: str, out: Path, label: str = "",
                          section: str = "weights") -> str:
    """The declared digest, lower-cased; refuses a missing, ``UNKNOWN`` or malformed one.

    Raises:
        DownloadError: one line saying what to set (``label`` names the declaration under
            ``config.yaml`` ``section``).
    """
    where = f"config.yaml {section}.{label}.sha256" if label else "--sha256"
    value = (sha256 or "").strip().lower()
    if not value or value == UNKNOWN_SHA256.lower():
        raise DownloadError(
            f"refusing to fetch {url}: its sha256 is not known ({where} is {sha256 or 'unset'}); "
            f"download it yourself, check it against its publisher, then set the digest there "
            f"or place the checked file at {out}")
    if not _SHA256.match(value):
        raise DownloadError(f"{where}: {sha256!r} is not a sha256 digest (64 hex digits)")
    return value


def part_path(out: Path) -> Path:
    return out.with_name(out.name + ".part")


def _open(url: str, offset: int, timeout: float):
    request = urllib.request.Request(url, headers={"User-Agent": "dcl-reproduction-fetch"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    return urllib.request.urlopen(request, timeout=timeout)


def _transfer(url: str, part: Path, timeout: float) -> None:
    """Bring ``part`` to the server's full length, resuming from its current size."""
    offset = part.stat().st_size if part.is_file() else 0
    try:
        response = _open(url, offset, timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            return  # the part already holds every byte; the digest decides
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(f"could not reach {url}: {reason}") from None
    with response:
        resumed = offset and response.status == 206
        if offset and not resumed:
            offset = 0  # the server sent the whole file: start the part again
        elif resumed and not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
            raise DownloadError(f"{url}: the server resumed at another offset than byte {offset} "
                                f"({response.headers.get('Content-Range')}); delete {part}")
        length = response.headers.get("Content-Length")
        expected = offset + int(length) if length is not None else None
        written = offset
        try:
            with open(part, "ab" if resumed else "wb") as fh:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    fh.write(chunk)
                    written += len(chunk)
        except (http.client.IncompleteRead, OSError) as err:
            raise DownloadError(
                f"download of {url} broke off after {part.stat().st_size} bytes "
                f"({type(err).__name__}); run again to resume from {part}") from None
    if expected is not None and written < expected:
        raise DownloadError(f"download of {url} broke off after {written} of {expected} bytes; "
                            f"run again to resume from {part}")


def fetch_url(url: str, out: Path, sha256: Optional[str], *, label: str = "",
              section: str = "weights", timeout: float = 60.0) -> Path:
    """Download ``url`` to ``out`` unless a file with the declared digest is already there.

    Args:
        url: ``http(s)://`` address.
        out: destination; its folder is created. ``out.part`` holds an unfinished transfer.
        sha256: the declared lowercase hex digest (64 digits).
        label: name of the declaration, for the messages (e.g. ``msra_r50``).
        section: the config.yaml section declaring it (``weights``, ``dataset_downloads.coco``).
        timeout: seconds to wait for the server at each read.

    Returns:
        ``out``, whose sha256 equals ``sha256``.

    Raises:
        DownloadError: digest unknown or malformed; an existing ``out`` with another digest
            (left in place, for the user to inspect); HTTP error or unreachable server; a
            transfer that broke off (the part is kept to resume); a digest mismatch of the
            downloaded bytes (the part is deleted).
    """
    out = Path(out)
    digest = check_sha256_declared(sha256, url, out, label, section)
    if out.is_file():
        got = sha256_of(out)
        if got != digest:
            raise DownloadError(f"{out}: sha256 {got} differs from the declared {digest}; "
                                "delete the file to fetch it again")
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(out)
    _transfer(url, part, timeout)
    got = sha256_of(part)
    if got != digest:
        part.unlink()
        raise DownloadError(f"{url}: sha256 {got} differs from the declared {digest}; "
                            "the download was deleted")
    os.replace(part, out)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dcl_data.fetch",
                                     description="Download one file, resumably, and check its sha256.")
    parser.add_argument("url")
    parser.add_argument("out", type=Path)
    parser.add_argument("--sha256", required=True, help=f"hex digest, or {UNKNOWN_SHA256}")
    parser.add_argument("--label", default="", help="the declaration's name, for messages")
    args = parser.parse_args(argv)
    try:
        path = fetch_url(args.url, args.out, args.sha256, label=args.label)
    except DownloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{path}: sha256 {args.sha256.lower()} verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
