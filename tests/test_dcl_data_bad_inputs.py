"""dcl_data's fetch step on bad input: one line, and nothing half-written left behind."""

from __future__ import annotations

import hashlib
import io
import random
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from dcl_data import DatasetError, DownloadError
from dcl_data.download import fetch_archive, fetch_sources
from dcl_data.sources import SourceArchive


def _spec(sha: str) -> SourceArchive:
    return SourceArchive(key="fakepkg", name="fakepkg", version="1.0",
                         filename="fakepkg-1.0.tar.gz", sha256=sha, pip_args=(),
                         members=("fakepkg-1.0/LICENSE",), licence="MIT",
                         licence_member="fakepkg-1.0/LICENSE")


def _tar_bytes() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("fakepkg-1.0/LICENSE")
        data = random.Random(0).randbytes(20000)  # incompressible: a cut lands inside it
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _fake_pip(tmp_path: Path, payload: bytes) -> str:
    """An 'interpreter' whose `-m pip download ... -d DIR` saves `payload` as the archive."""
    (tmp_path / "payload").write_bytes(payload)
    script = tmp_path / "fake-python"
    script.write_text('#!/bin/sh\nfor a; do last="$a"; done\n'
                      f'cp {tmp_path / "payload"} "$last/fakepkg-1.0.tar.gz"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_a_download_with_the_wrong_checksum_stops_in_one_line_and_leaves_nothing(tmp_path):
    good = _tar_bytes()
    python = _fake_pip(tmp_path, good[:-100])  # what a cut-off transfer would save
    downloads = tmp_path / "downloads"
    with pytest.raises(DownloadError) as err:
        fetch_archive(_spec(hashlib.sha256(good).hexdigest()), downloads, python=python)
    message = str(err.value)
    assert "sha256" in message and "differs from the pinned" in message and "\n" not in message
    assert list(downloads.iterdir()) == []
    # The same fake registry serving the right bytes is accepted.
    python = _fake_pip(tmp_path, good)
    assert fetch_archive(_spec(hashlib.sha256(good).hexdigest()), downloads,
                         python=python).read_bytes() == good


def test_a_damaged_archive_is_one_dataset_error_and_extracts_nothing(tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    damaged = _tar_bytes()[:5000]  # pinned as it is: the checksum cannot catch it
    (downloads / "fakepkg-1.0.tar.gz").write_bytes(damaged)
    spec = _spec(hashlib.sha256(damaged).hexdigest())
    with pytest.raises(DatasetError) as err:
        fetch_sources(downloads, (spec,), python="/nonexistent/python")
    message = str(err.value)
    assert message.startswith(f"{downloads / 'fakepkg-1.0.tar.gz'}: damaged archive (")
    assert "\n" not in message and message.endswith("delete it to fetch it again")
    assert list((downloads / "extracted").iterdir()) == []


@pytest.mark.parametrize("module, extra", [("dcl_data.download", []),
                                           ("dcl_data.embedded", ["--out", "OUT"])])
def test_a_downloads_path_that_is_a_file_is_one_line(tmp_path, module, extra):
    cache = tmp_path / "cache"
    cache.write_text("not a folder")
    extra = [str(tmp_path / "out") if a == "OUT" else a for a in extra]
    run = subprocess.run([sys.executable, "-m", module, "--downloads", str(cache), *extra],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines() == [
        f"error: {cache}: the downloads cache must be a folder, not a file"]
    assert cache.read_text() == "not a folder" and not (tmp_path / "out").exists()


@pytest.mark.parametrize("existing", ["file", "folder_with_other_files", "cwd"])
def test_the_embedded_builder_never_replaces_what_it_did_not_build(tmp_path, existing,
                                                                   monkeypatch):
    from dcl_data.embedded import build_embedded_dataset

    if existing == "file":
        out = tmp_path / "out"
        out.write_text("notes")
    else:
        out = tmp_path / "out"
        out.mkdir()
        (out / "keep.txt").write_text("notes")
        if existing == "cwd":
            monkeypatch.chdir(out)
            out = Path(".")
    with pytest.raises(DatasetError) as err:
        build_embedded_dataset(tmp_path / "no-downloads", out, python="/nonexistent/python")
    assert str(err.value).startswith(f"--out {out} exists and is not an embedded dataset")
    assert "\n" not in str(err.value)
    kept = tmp_path / "out" if existing == "file" else tmp_path / "out" / "keep.txt"
    assert kept.read_text() == "notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
