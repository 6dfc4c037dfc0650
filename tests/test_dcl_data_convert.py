"""Conversion of small hand-made inputs (labelme JSON, label images, mask stacks) to COCO."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dcl_data import DatasetError, validate_coco_instances
from dcl_data.coco import CocoSplit, Instance, encode_instance, write_json_atomic
from dcl_data.embedded import (SourceImage, _footprint_masks, _geotiff_to_pixel, build_categories,
                               check_disjoint)
from dcl_data.labelme import read_labelme
from dcl_data.masks import (area_of, drop_small, instances_from_label_image, instances_from_masks,
                            tile_origins)


def _labelme(tmp_path: Path, shapes: list[dict], name: str = "img", h: int = 20, w: int = 30, **over) -> Path:
    Image.new("RGB", (w, h)).save(tmp_path / f"{name}.jpg")
    data = {"version": "5.0.0", "shapes": shapes, "imagePath": f"{name}.jpg",
            "imageHeight": h, "imageWidth": w, "imageData": None, **over}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


def _shape(label, points, group_id=None, shape_type="polygon"):
    return {"label": label, "points": points, "group_id": group_id, "shape_type": shape_type, "flags": {}}


SQUARE = [[0, 0], [10, 0], [10, 10], [0, 10]]          # 10x10 = 100 px in pycocotools
SMALL = [[20, 2], [24, 2], [24, 6], [20, 6]]            # 4x4 = 16 px


def test_labelme_grouping_ignore_and_label_map(tmp_path):
    path = _labelme(tmp_path, [
        _shape("person", SQUARE),
        _shape("person", SMALL, group_id=0),
        _shape("person", [[12, 12], [16, 12], [16, 16]], group_id=0),   # same person as SMALL
        _shape("__ignore__", SQUARE),
        _shape("track", [[2, 12], [8, 12], [8, 18], [2, 18]], shape_type="rectangle"),
    ])
    # rectangles come with 2 points in labelme
    data = json.loads(path.read_text())
    data["shapes"][4]["points"] = [[2, 12], [8, 18]]
    path.write_text(json.dumps(data))

    item = read_labelme(path, label_map={"person": "person", "track": "truck"})
    assert (item.height, item.width, item.ignored) == (20, 30, 1)
    assert [i.category for i in item.instances] == ["person", "person", "truck"]
    assert [len(i.polygons) for i in item.instances] == [1, 2, 1]
    assert item.instances[2].polygons == [[2.0, 12.0, 8.0, 12.0, 8.0, 18.0, 2.0, 18.0]]

    by_label = read_labelme(path, label_map={"person": "person", "track": "truck"}, group_by="label")
    assert [(i.category, len(i.polygons)) for i in by_label.instances] == [("person", 3), ("truck", 1)]


@pytest.mark.parametrize("shapes, over, pattern", [
    ([_shape("cat", SQUARE)], {}, r"shapes\[0\]: label 'cat' is not in the label map"),
    ([_shape("person", [[0, 0], [1, 1]])], {}, r"shapes\[0\]: a polygon needs >= 3 points, got 2"),
    ([_shape("person", SQUARE, shape_type="circle")], {}, r"shapes\[0\]: shape_type 'circle' is not one of"),
    ([{"label": "person"}], {}, r"shapes\[0\]: missing key 'label' or 'points'"),
    ([_shape("person", [[0, "a"], [1, 1], [2, 2]])], {}, r"shapes\[0\]: 'points' must be a list of \[x, y\] pairs"),
    ([], {"imagePath": "missing.jpg"}, r"imagePath 'missing.jpg' not found"),
    ([], {"imageHeight": 0}, r"imageHeight/imageWidth must be positive integers"),
])
def test_labelme_errors_name_file_and_entry(tmp_path, shapes, over, pattern):
    path = _labelme(tmp_path, shapes, **over)
    with pytest.raises(DatasetError, match=pattern) as err:
        read_labelme(path, label_map={"person": "person"})
    assert str(err.value).startswith(str(path))


def test_labelme_missing_key_and_malformed(tmp_path):
    path = _labelme(tmp_path, [])
    data = json.loads(path.read_text())
    del data["shapes"]
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=r"img\.json: missing key 'shapes'"):
        read_labelme(path)
    path.write_text('{"shapes": [}')
    with pytest.raises(DatasetError, match=r"malformed JSON at line 1 column 13"):
        read_labelme(path)
    with pytest.raises(DatasetError, match=r"absent\.json: file not found"):
        read_labelme(tmp_path / "absent.json")


def test_encode_polygon_and_mask_area_bbox():
    poly = encode_instance(Instance("person", polygons=[[0, 0, 10, 0, 10, 10, 0, 10]]), 20, 30)
    assert poly["area"] == 100.0
    assert poly["bbox"] == [0.0, 0.0, 10.0, 10.0]
    assert poly["segmentation"] == [[0.0, 0.0, 10.0, 0.0, 10.0, 10.0, 0.0, 10.0]]

    mask = np.zeros((5, 6), bool)
    mask[1:3, 2:5] = True
    enc = encode_instance(Instance("nucleus", mask=mask), 5, 6)
    assert enc["area"] == 6.0
    assert enc["bbox"] == [2.0, 1.0, 3.0, 2.0]
    assert enc["segmentation"]["size"] == [5, 6]
    assert isinstance(enc["segmentation"]["counts"], str)

    with pytest.raises(ValueError, match="mask shape"):
        encode_instance(Instance("nucleus", mask=mask), 6, 5)
    with pytest.raises(ValueError, match="exactly one of polygons and mask"):
        Instance("x")


def test_label_image_to_instances_and_tiles():
    labels = np.zeros((8, 8), np.uint16)
    labels[0:2, 0:3] = 4          # 6 px
    labels[5:8, 5:8] = 9          # 9 px, crosses the tile at rows 4..7 / cols 4..7
    labels[7, 0] = 2              # 1 px
    inst = instances_from_label_image(labels, "nucleus")
    assert [int(i.mask.sum()) for i in inst] == [1, 6, 9]           # label order 2, 4, 9
    kept, dropped = drop_small(inst, 8, 8, min_area=6)
    assert ([int(i.mask.sum()) for i in kept], dropped) == ([6, 9], 1)
    assert tile_origins(8, 8, tile=4, stride=2, row_range=(0, 8)) == [
        (y, x) for y in (0, 2, 4) for x in (0, 2, 4)]
    assert tile_origins(512, 512, 128, 128, (256, 512)) == [(y, x) for y in (256, 384) for x in (0, 128, 256, 384)]
    assert len(tile_origins(512, 512, 128, 64, (0, 256))) == 21
    with pytest.raises(ValueError, match="outside an image"):
        tile_origins(8, 8, 4, 2, (0, 9))
    assert tile_origins(900, 900, 300, 300, (0, 900), (300, 900)) == [
        (y, x) for y in (0, 300, 600) for x in (300, 600)]
    assert tile_origins(900, 900, 300, 150, (0, 900), (0, 300)) == [(y, 0) for y in (0, 150, 300, 450, 600)]
    with pytest.raises(ValueError, match="outside an image of width"):
        tile_origins(8, 8, 4, 2, (0, 8), (2, 9))
    with pytest.raises(ValueError, match="2-D integer"):
        instances_from_label_image(labels.astype(float), "nucleus")


def test_mask_stack_and_polygon_area():
    masks = np.zeros((2, 4, 4), bool)
    masks[0, :2, :2] = True
    masks[1, 3, 3] = True
    inst = instances_from_masks(masks, ["chair", "bottle"])
    assert [(i.category, int(i.mask.sum())) for i in inst] == [("chair", 4), ("bottle", 1)]
    assert area_of(Instance("p", polygons=[[0, 0, 4, 0, 4, 4, 0, 4]]), 10, 10) == 16.0
    with pytest.raises(ValueError, match="N categories"):
        instances_from_masks(masks, ["chair"])


def test_coco_split_ids_from_one_and_validates(tmp_path):
    images = [
        SourceImage(split="train", group="g", file_name="a.png", height=20, width=30, source="s",
                    instances=[Instance("truck", polygons=[[0, 0, 10, 0, 10, 10, 0, 10]])]),
        SourceImage(split="train", group="g", file_name="b.png", height=8, width=8, source="s",
                    instances=[Instance("nucleus", mask=np.eye(8, dtype=bool)),
                               Instance("person", polygons=[[1, 1, 5, 1, 5, 5]])]),
    ]
    categories = build_categories(images)
    assert [(c["id"], c["name"], c["supercategory"]) for c in categories] == [
        (1, "person", "person"), (2, "truck", "vehicle"), (3, "nucleus", "cell")]
    split = CocoSplit(categories=categories)
    for im in images:
        split.add_image(im.file_name, im.height, im.width, im.instances, source=im.source)
    coco = split.to_dict()
    assert [i["id"] for i in coco["images"]] == [1, 2]
    assert [(a["id"], a["image_id"], a["category_id"], a["iscrowd"]) for a in coco["annotations"]] == [
        (1, 1, 2, 0), (2, 2, 3, 0), (3, 2, 1, 0)]
    assert coco["annotations"][1]["area"] == 8.0 and coco["annotations"][1]["bbox"] == [0.0, 0.0, 8.0, 8.0]
    path = tmp_path / "ann" / "instances_train.json"
    write_json_atomic(path, coco)
    assert validate_coco_instances(path).instances_per_category == {"person": 1, "truck": 1, "nucleus": 1}
    assert stat.S_IMODE(os.stat(path).st_mode) & 0o044  # readable by others, unlike mkstemp's 0600
    assert [p.name for p in path.parent.iterdir()] == ["instances_train.json"]  # no temp left
    with pytest.raises(KeyError, match="unknown category 'cat'"):
        split.add_image("c.png", 4, 4, [Instance("cat", mask=np.ones((4, 4), bool))])


def test_write_json_atomic_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "x.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_geotiff_footprints_become_pixel_masks(tmp_path):
    """Map coordinates -> pixels with the GeoTIFF tiepoint and scale (north up), holes cut."""
    import tifffile

    tif_path = tmp_path / "t.tif"
    # Pixel (0, 0)'s corner at map (1000, 2000), 2 map units per pixel.
    tifffile.imwrite(tif_path, np.zeros((10, 10), np.uint16),
                     extratags=[(33550, "d", 3, (2.0, 2.0, 0.0)),
                                (33922, "d", 6, (0.0, 0.0, 0.0, 1000.0, 2000.0, 0.0))])
    with tifffile.TiffFile(tif_path) as tif:
        transform = _geotiff_to_pixel(tif)
    assert transform == (1000.0, 2000.0, 2.0, 2.0)

    def ring(c0, r0, c1, r1):  # pixel box -> map ring
        return [[1000 + 2 * c, 2000 - 2 * r] for c, r in ((c0, r0), (c1, r0), (c1, r1), (c0, r1), (c0, r0))]

    features = [{"type": "Feature", "properties": {},
                 "geometry": {"type": "Polygon", "coordinates": [ring(1, 1, 7, 7), ring(3, 3, 5, 5)]}},
                {"type": "Feature", "properties": {},
                 "geometry": {"type": "MultiPolygon", "coordinates": [[ring(8, 0, 10, 2)], [ring(8, 8, 10, 10)]]}}]
    (tmp_path / "f.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    masks = _footprint_masks(tmp_path / "f.geojson", transform, 10, 10)
    expected = np.zeros((2, 10, 10), bool)
    expected[0, 1:7, 1:7] = True
    expected[0, 3:5, 3:5] = False
    expected[1, 0:2, 8:10] = expected[1, 8:10, 8:10] = True
    np.testing.assert_array_equal(masks, expected)

    other = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4326"}},
             "features": features}
    (tmp_path / "crs.geojson").write_text(json.dumps(other))
    np.testing.assert_array_equal(_footprint_masks(tmp_path / "crs.geojson", transform, 10, 10, 4326), expected)
    with pytest.raises(DatasetError, match="but the image is EPSG:32616"):
        _footprint_masks(tmp_path / "crs.geojson", transform, 10, 10, 32616)
    (tmp_path / "bad.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1000, 2000]}}]}))
    with pytest.raises(DatasetError, match=r"features\[0\] is a Point"):
        _footprint_masks(tmp_path / "bad.geojson", transform, 10, 10)
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.zeros((4, 4), np.uint16))
    with tifffile.TiffFile(plain) as tif, pytest.raises(DatasetError, match="not a GeoTIFF"):
        _geotiff_to_pixel(tif)


def _image(split: str, source: str, crop=None) -> SourceImage:
    return SourceImage(split=split, group="g", file_name=f"{split}_{source}_{crop}.png", height=8,
                       width=8, instances=[], source=source, crop=crop)


def test_check_disjoint_refuses_overlaps():
    check_disjoint([_image("train", "a"), _image("val", "b"),
                    _image("train", "c", [0, 0, 4, 4]), _image("val", "c", [4, 0, 4, 4])])
    with pytest.raises(DatasetError, match="both splits"):
        check_disjoint([_image("train", "a"), _image("val", "a")])
    with pytest.raises(DatasetError, match="both splits"):
        check_disjoint([_image("val", "a"), _image("train", "a", [0, 0, 4, 4])])
    with pytest.raises(DatasetError, match="overlaps"):
        check_disjoint([_image("train", "c", [0, 0, 4, 4]), _image("val", "c", [3, 3, 4, 4])])
