"""The paper's datasets, fetched only when asked: COCO 2017 and Cityscapes fine.

COCO 2017: each official zip (``images.cocodataset.org``) is downloaded by
:func:`dcl_data.fetch.fetch_url` (resumable ``.part``, sha256 checked before the atomic rename)
and unpacked into the COCO root of ``config.yaml`` ``datasets.coco`` (detectron2's
``datasets/coco``: ``annotations/``, ``train2017/``, ``val2017/``).

Cityscapes needs a login. cityscapesScripts' own downloader (``csDownload``:
``cityscapesscripts.download.downloader``) logs in, resumes and checks each package's md5 against
the site's; the credentials come from the environment variables ``CITYSCAPES_USERNAME`` and
``CITYSCAPES_PASSWORD`` (answered to its login prompts, never stored, printed or passed on a
command line). Without them the fetch stops with one line saying what to set or where to put the
unpacked files. Packages unpack into ``config.yaml`` ``sources.cityscapes`` (``leftImg8bit/``,
``gtFine/``).

Each archive is unpacked into a scratch folder beside its destination and moved into place only
once complete; ``ROOT/.fetched/<archive>.json`` then records it and the archive is deleted. A
re-run skips recorded archives and resumes an unfinished download.

CLI (one line on stderr and exit status 1 on any failure)::

    python -m dcl_data.dataset_fetch coco ROOT DOWNLOADS URL SHA256 [--label NAME]
    python -m dcl_data.dataset_fetch cityscapes ROOT DOWNLOADS PACKAGE
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Mapping, Optional
from unittest import mock

from .errors import DatasetError, DownloadError
from .fetch import fetch_url

#: Environment variables holding the Cityscapes login.
CITYSCAPES_USER_ENV = "CITYSCAPES_USERNAME"
CITYSCAPES_PASSWORD_ENV = "CITYSCAPES_PASSWORD"
CITYSCAPES_REGISTER = "https://www.cityscapes-dataset.com/register/"


def marker_path(root: Path, archive: str) -> Path:
    """``ROOT/.fetched/<archive>.json``: written once ``archive`` is unpacked into ``root``."""
    return Path(root) / ".fetched" / f"{archive}.json"


def _move_into(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``, merging into a folder already there (files are replaced)."""
    if src.is_dir() and dst.is_dir():
        for child in src.iterdir():
            _move_into(child, dst / child.name)
        src.rmdir()
    else:
        if dst.is_dir():
            shutil.rmtree(dst)
        elif src.is_dir() and dst.exists():
            dst.unlink()  # os.replace cannot put a folder over a file
        os.replace(src, dst)


def unpack(archive: Path, root: Path) -> list[str]:
    """Unpack a zip into ``root`` through a scratch folder, so nothing half-written lands.

    Returns:
        The archive's top-level entries, now under ``root``.

    Raises:
        DownloadError: a corrupt zip, or a member that would land outside ``root`` (absolute,
            or with ``..``).
    """
    archive, root = Path(archive), Path(root)
    root.mkdir(parents=True, exist_ok=True)
    scratch = root / f".unpack-{archive.name}"
    if scratch.exists():
        shutil.rmtree(scratch)  # left by an interrupted run: unpack again
    try:
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                path = PurePosixPath(name)
                if path.is_absolute() or ".." in path.parts:
                    raise DownloadError(f"{archive}: member {name!r} would land outside {root}")
            zf.extractall(scratch)
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        shutil.rmtree(scratch, ignore_errors=True)
        raise DownloadError(f"{archive}: not a readable zip ({err}); delete it to fetch it again")
    top = sorted(p.name for p in scratch.iterdir())
    for name in top:
        _move_into(scratch / name, root / name)
    scratch.rmdir()
    return top


def _record(root: Path, archive: Path, entries: list[str], **source) -> Path:
    marker = marker_path(root, archive.name)
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(json.dumps({"archive": archive.name, "unpacked": entries, **source}, indent=2))
    os.replace(tmp, marker)
    archive.unlink()
    return marker


def fetch_coco_archive(url: str, sha256: Optional[str], root: Path, downloads: Path,
                       label: str = "") -> Path:
    """Download one COCO 2017 zip (sha256-checked) and unpack it into the COCO root.

    Args:
        url: the zip's address (``http(s)://``).
        sha256: its published digest (``config.yaml`` ``dataset_downloads.coco``).
        root: the COCO root (``datasets/coco``).
        downloads: folder the zip is downloaded to (deleted once unpacked).
        label: the declaration's name under ``dataset_downloads.coco``, for messages.

    Returns:
        The marker ``ROOT/.fetched/<zip>.json``.

    Raises:
        DownloadError: as :func:`dcl_data.fetch.fetch_url` (unknown digest, HTTP error, broken
            transfer, digest mismatch) or :func:`unpack`.
    """
    root = Path(root)
    name = url.rstrip("/").rsplit("/", 1)[-1]
    marker = marker_path(root, name)
    if marker.is_file():
        return marker
    archive = fetch_url(url, Path(downloads) / name, sha256, label=label,
                        section="dataset_downloads.coco")
    return _record(root, archive, unpack(archive, root), url=url, sha256=sha256)


def cityscapes_credentials(root: Path, env: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """The Cityscapes login from the environment.

    Raises:
        DownloadError: one line naming the variables to set, or where to unpack the packages
            by hand, when either is unset or empty.
    """
    user, password = env.get(CITYSCAPES_USER_ENV, ""), env.get(CITYSCAPES_PASSWORD_ENV, "")
    if not user or not password:
        raise DownloadError(
            f"Cityscapes needs a login: set {CITYSCAPES_USER_ENV} and {CITYSCAPES_PASSWORD_ENV} "
            f"(an account from {CITYSCAPES_REGISTER}), or unpack leftImg8bit_trainvaltest.zip and "
            f"gtFine_trainvaltest.zip into {root} yourself")
    return user, password


@contextmanager
def _prompts_answered(user: str, password: str):
    """Answer cityscapesScripts' interactive login: user, password, and 'no' to storing them."""
    from cityscapesscripts.download import downloader

    with mock.patch.object(downloader, "input", side_effect=[user, "n"], create=True), \
            mock.patch.object(downloader.getpass, "getpass", return_value=password):
        yield downloader


def fetch_cityscapes_package(package: str, root: Path, downloads: Path,
                             env: Mapping[str, str] = os.environ) -> Path:
    """Download one Cityscapes package with cityscapesScripts' downloader and unpack it.

    The package grows in ``DOWNLOADS/.part/`` (the downloader resumes it and checks its md5);
    only a checked package moves to ``DOWNLOADS/`` and is unpacked into ``root``.

    Args:
        package: a package name of the Cityscapes site, e.g. ``gtFine_trainvaltest.zip``.
        root: the Cityscapes root (``config.yaml`` ``sources.cityscapes``).
        downloads: download folder.
        env: where the login is read (:func:`cityscapes_credentials`).

    Returns:
        The marker ``ROOT/.fetched/<package>.json``.

    Raises:
        DownloadError: login missing or refused, unknown package, broken transfer (kept to
            resume), md5 mismatch (deleted), unreadable zip. One line; never the password.
    """
    root, downloads = Path(root), Path(downloads)
    marker = marker_path(root, package)
    if marker.is_file():
        return marker
    user, password = cityscapes_credentials(root, env)
    part_dir = downloads / ".part"
    part_dir.mkdir(parents=True, exist_ok=True)
    part = part_dir / package
    with _prompts_answered(user, password) as downloader:
        try:
            session = downloader.login()
        except Exception as err:  # the downloader raises bare Exception / requests errors
            raise DownloadError(f"Cityscapes login as {user} failed: {_clean(err, password)}") from None
        try:
            downloader.download_packages(session=session, package_names=[package],
                                         destination_path=str(part_dir), resume=True)
        except Exception as err:
            if "MD5" in str(err) and part.exists():
                part.unlink()
                raise DownloadError(f"Cityscapes {package}: md5 differs from the site's; the "
                                    "download was deleted") from None
            raise DownloadError(f"Cityscapes {package}: {_clean(err, password)}; run again to "
                                f"resume from {part}") from None
    archive = downloads / package
    os.replace(part, archive)
    return _record(root, archive, unpack(archive, root), package=package,
                   checked="md5, by cityscapesScripts' downloader")


def _clean(err: BaseException, secret: str) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text.replace(secret, "***") if secret else text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dcl_data.dataset_fetch",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="dataset", required=True)
    coco = sub.add_parser("coco", help="one COCO 2017 zip (sha256-checked)")
    coco.add_argument("root", type=Path)
    coco.add_argument("downloads", type=Path)
    coco.add_argument("url")
    coco.add_argument("sha256")
    coco.add_argument("--label", default="", help="the declaration's name, for messages")
    city = sub.add_parser("cityscapes", help="one Cityscapes package (login from the environment)")
    city.add_argument("root", type=Path)
    city.add_argument("downloads", type=Path)
    city.add_argument("package")
    args = parser.parse_args(argv)
    try:
        if args.dataset == "coco":
            marker = fetch_coco_archive(args.url, args.sha256, args.root, args.downloads,
                                        args.label)
        else:
            marker = fetch_cityscapes_package(args.package, args.root, args.downloads)
    except (DownloadError, DatasetError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{marker}: {', '.join(json.loads(marker.read_text())['unpacked'])} unpacked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
