"""dcl_data.dataset_fetch: COCO 2017 zips from a local HTTP server (127.0.0.1) serving small
archives of a generated COCO tree, good and corrupt; Cityscapes through cityscapesScripts'
downloader with its login and download mocked (no network): refused without credentials,
unpacked into the layout the data rules check with them."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from dcl_data import DownloadError
from dcl_data.dataset_fetch import (CITYSCAPES_PASSWORD_ENV, CITYSCAPES_USER_ENV,
                                    fetch_cityscapes_package, fetch_coco_archive, marker_path,
                                    unpack)
from dcl_data.paper_sets import check_cityscapes_layout, check_coco_layout
from dcl_data.preflight_sets import make_cityscapes, make_coco
from test_fetch import local_server

REPO = Path(__file__).resolve().parents[1]


def _zip(tree: Path, out: Path, *tops: str) -> Path:
    """``out``: the entries ``tops`` of ``tree`` with their paths relative to ``tree``."""
    with zipfile.ZipFile(out, "w") as zf:
        for top in tops:
            for path in sorted((tree / top).rglob("*")) if (tree / top).is_dir() else [tree / top]:
                zf.write(path, path.relative_to(tree).as_posix())
    return out


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def coco_zips(tmp_path_factory):
    """The three COCO 2017 zips of a generated tree, and a corrupt copy of val2017.zip."""
    tree = tmp_path_factory.mktemp("coco_tree")
    make_coco(tree, {"train": 2, "val": 2})
    served = tmp_path_factory.mktemp("served")
    _zip(tree, served / "annotations_trainval2017.zip", "annotations")
    _zip(tree, served / "train2017.zip", "train2017")
    _zip(tree, served / "val2017.zip", "val2017")
    data = bytearray((served / "val2017.zip").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (served / "corrupt").mkdir()
    (served / "corrupt" / "val2017.zip").write_bytes(bytes(data))
    return served


@pytest.fixture()
def server(coco_zips):
    with local_server(functools.partial(_QuietHandler, directory=str(coco_zips))) as url:
        yield url


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_coco_zips_unpack_into_detectron2_layout_and_are_not_fetched_twice(server, coco_zips,
                                                                         tmp_path):
    root, downloads = tmp_path / "datasets" / "coco", tmp_path / "downloads"
    for name in ("annotations_trainval2017", "train2017", "val2017"):
        marker = fetch_coco_archive(f"{server}/{name}.zip", _sha(coco_zips / f"{name}.zip"),
                                    root, downloads, label=name)
        assert marker == marker_path(root, f"{name}.zip") and marker.is_file()
    layout = check_coco_layout(root)
    assert layout["val"]["json"] == str(root / "annotations" / "instances_val2017.json")
    assert not list(downloads.iterdir())  # each zip is deleted once unpacked
    assert not list(root.glob(".unpack-*"))
    # Recorded: a second call touches neither the server nor the tree (the url is unreachable).
    fetch_coco_archive("http://127.0.0.1:9/val2017.zip", "0" * 64, root, downloads)


def test_corrupt_coco_zip_is_refused_and_nothing_lands(server, coco_zips, tmp_path):
    root, downloads = tmp_path / "coco", tmp_path / "downloads"
    with pytest.raises(DownloadError, match=r"val2017\.zip: sha256 [0-9a-f]{64} differs from the "
                                            r"declared .*; the download was deleted$") as err:
        fetch_coco_archive(f"{server}/corrupt/val2017.zip", _sha(coco_zips / "val2017.zip"),
                           root, downloads)
    assert "\n" not in str(err.value)
    assert not root.exists() and not list(downloads.iterdir())


def test_unknown_coco_digest_names_its_config_key(tmp_path):
    with pytest.raises(DownloadError, match=r"config\.yaml dataset_downloads\.coco\.val2017\.sha256 "
                                            r"is UNKNOWN"):
        fetch_coco_archive("http://127.0.0.1:9/val2017.zip", "UNKNOWN", tmp_path / "coco",
                           tmp_path / "downloads", label="val2017")


def test_zip_with_a_member_outside_the_root_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../outside.txt", "x")
    with pytest.raises(DownloadError, match=r"member '\.\./outside\.txt' would land outside"):
        unpack(archive, tmp_path / "root")
    assert not (tmp_path / "outside.txt").exists()


def test_coco_cli_prints_one_error_line(server, coco_zips, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dcl_data.dataset_fetch", "coco", str(tmp_path / "coco"),
         str(tmp_path / "dl"), f"{server}/corrupt/val2017.zip", _sha(coco_zips / "val2017.zip")],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")


# --- Cityscapes: cityscapesScripts' downloader, mocked ------------------------------------------


class _FakeDownloader:
    """Stands in for cityscapesscripts.download.downloader's network calls: login() asks its
    prompts as the real one does; download_packages() copies a local zip."""

    def __init__(self, packages: dict, md5_ok: bool = True):
        self.packages, self.md5_ok, self.calls, self.prompts = packages, md5_ok, [], []

    def install(self, monkeypatch):
        from cityscapesscripts.download import downloader

        def login():
            user = downloader.input("Cityscapes username or email address: ")
            password = downloader.getpass.getpass("Cityscapes password: ")
            store = downloader.input("Store credentials unencrypted [y/N]: ")
            self.prompts.append((user, password, store))
            return "session"

        def download_packages(*, session, package_names, destination_path, resume=False):
            self.calls.append((session, list(package_names), resume))
            for name in package_names:
                shutil.copy(self.packages[name], Path(destination_path) / name)
                if not self.md5_ok:
                    raise Exception("MD5 sum of downloaded file does not match.")

        monkeypatch.setattr(downloader, "login", login)
        monkeypatch.setattr(downloader, "download_packages", download_packages)
        return self


@pytest.fixture(scope="module")
def cityscapes_zips(tmp_path_factory):
    tree = tmp_path_factory.mktemp("cityscapes_tree")
    make_cityscapes(tree, {"train": 1, "val": 1}, height=64, width=128)
    (tree / "license.txt").write_text("licence")
    served = tmp_path_factory.mktemp("cs_served")
    return {"gtFine_trainvaltest.zip": _zip(tree, served / "gtFine_trainvaltest.zip",
                                            "gtFine", "license.txt"),
            "leftImg8bit_trainvaltest.zip": _zip(tree, served / "leftImg8bit_trainvaltest.zip",
                                                 "leftImg8bit", "license.txt")}


@pytest.mark.parametrize("env", [{}, {CITYSCAPES_USER_ENV: "me"},
                                 {CITYSCAPES_USER_ENV: "me", CITYSCAPES_PASSWORD_ENV: ""}])
def test_cityscapes_without_credentials_says_what_to_set_and_never_calls_the_downloader(
        monkeypatch, cityscapes_zips, tmp_path, env):
    fake = _FakeDownloader(cityscapes_zips).install(monkeypatch)
    with pytest.raises(DownloadError) as err:
        fetch_cityscapes_package("gtFine_trainvaltest.zip", tmp_path / "cityscapes",
                                 tmp_path / "dl", env=env)
    message = str(err.value)
    assert "\n" not in message
    assert CITYSCAPES_USER_ENV in message and CITYSCAPES_PASSWORD_ENV in message
    assert str(tmp_path / "cityscapes") in message  # or where to unpack by hand
    assert fake.prompts == [] and fake.calls == []


def test_cityscapes_cli_without_credentials_is_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in (CITYSCAPES_USER_ENV, CITYSCAPES_PASSWORD_ENV)}
    result = subprocess.run(
        [sys.executable, "-m", "dcl_data.dataset_fetch", "cityscapes", str(tmp_path / "cs"),
         str(tmp_path / "dl"), "gtFine_trainvaltest.zip"],
        cwd=REPO, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: Cityscapes needs a login: set {CITYSCAPES_USER_ENV}")


def test_cityscapes_packages_unpack_into_the_layout_the_data_rules_read(
        monkeypatch, cityscapes_zips, tmp_path):
    fake = _FakeDownloader(cityscapes_zips).install(monkeypatch)
    env = {CITYSCAPES_USER_ENV: "me@example.org", CITYSCAPES_PASSWORD_ENV: "s3cret"}
    root, downloads = tmp_path / "datasets" / "cityscapes", tmp_path / "dl"
    for package in cityscapes_zips:
        fetch_cityscapes_package(package, root, downloads, env=env)
    assert check_cityscapes_layout(root) == {"train": 1, "val": 1}
    # The login answered from the environment, storing nothing; downloads resume.
    assert fake.prompts == [("me@example.org", "s3cret", "n")] * 2
    assert [c[2] for c in fake.calls] == [True, True]
    assert not list(downloads.glob("*.zip")) and not list((downloads / ".part").iterdir())
    for package in cityscapes_zips:
        assert "s3cret" not in marker_path(root, package).read_text()
    fetch_cityscapes_package("gtFine_trainvaltest.zip", root, downloads, env={})  # recorded
    assert len(fake.calls) == 2


def test_cityscapes_md5_mismatch_deletes_the_download(monkeypatch, cityscapes_zips, tmp_path):
    _FakeDownloader(cityscapes_zips, md5_ok=False).install(monkeypatch)
    env = {CITYSCAPES_USER_ENV: "me", CITYSCAPES_PASSWORD_ENV: "pw"}
    with pytest.raises(DownloadError, match=r"^Cityscapes gtFine_trainvaltest\.zip: md5 differs "
                                            r"from the site's; the download was deleted$"):
        fetch_cityscapes_package("gtFine_trainvaltest.zip", tmp_path / "cs", tmp_path / "dl",
                                 env=env)
    assert not list((tmp_path / "dl").rglob("*.zip")) and not (tmp_path / "cs").exists()


# --- The workflow: opt-in -----------------------------------------------------------------------


def test_the_workflow_downloads_datasets_only_when_asked(tmp_path):
    from test_workflow import planned_jobs, snakemake, workdir

    (tmp_path / "embedded").mkdir()
    plain = snakemake(workdir(tmp_path / "embedded"), "-n", "--cores", "1").stdout
    assert "Job stats" in plain and not any(j.startswith("fetch_") for j in planned_jobs(plain))
    # At paper scale a missing dataset stops the plan naming the file, not planning a download.
    (tmp_path / "paper").mkdir()
    wd = workdir(tmp_path / "paper", scale="paper")
    result = snakemake(wd, "-n", "--cores", "1", check=False)
    assert result.returncode != 0 and "datasets/coco/annotations/instances_" in result.stdout
    assert "fetch_coco" not in result.stdout and "fetch_cityscapes" not in result.stdout
    asked = planned_jobs(snakemake(wd, "-n", "--cores", "1", "fetch_datasets").stdout)
    assert asked == {"fetch_cityscapes_gtFine_trainvaltest": 1,
                     "fetch_cityscapes_leftImg8bit_trainvaltest": 1,
                     "fetch_coco_annotations_trainval2017": 1, "fetch_coco_train2017": 1,
                     "fetch_coco_val2017": 1, "fetch_datasets": 1, "total": 6}
