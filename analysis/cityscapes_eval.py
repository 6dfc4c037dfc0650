"""Cityscapes-style instance AP (paper Table 5) of COCO-format predictions, by cityscapesScripts.

The official evaluation (``cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling``,
Cordts et al., CVPR 2016) does the matching and the scoring: AP is the mean over IoU thresholds
0.50:0.05:0.95 and over the 8 instance classes (person, rider, car, truck, bus, train,
motorcycle, bicycle) of its precision-recall areas; ground-truth instances under 100 pixels
and group regions ("cargroup", ...) are ignored, and predictions lying mostly on ignored or void
pixels are not counted as false positives. This module only feeds it:

1. the project's results JSON (``[{image_id, category_id, segmentation (RLE), score}]``) and the
   COCO ground truth written by ``dcl_data.cityscapes_convert`` are validated by
   :mod:`analysis.coco_eval`;
2. each image id's ``file_name`` (``<city>/<frame>_leftImg8bit.png``) names its label image
   ``GTFINE_DIR/<city>/<frame>_gtFine_instanceIds.png``; each category's *name* gives its
   Cityscapes label id (``cityscapesscripts.helpers.labels``);
3. the predictions are written in the format the script reads (per image a text file of
   ``<mask png> <label id> <score>`` lines, masks as PNGs), in a temporary folder;
4. cityscapesScripts' own functions match (``instances2dict``, ``matchGtWithPreds``) and score
   (``evaluateMatches``, ``computeAverages``).

Documented behaviour:

- Every image of the ground-truth JSON is evaluated; an image without predictions counts its
  instances as misses. An empty prediction list is valid: AP 0 for every class with ground
  truth. A class without ground truth gets ``nan`` (``null`` in JSON) and is left out of the
  means, as cityscapesScripts does.
- Two inputs crash cityscapesScripts 2.3.0's ``evaluateMatches`` for one class and threshold:
  ground truth present but every prediction ignored and none matched (its issue #89:
  ``IndexError``), and predictions of a class without any ground truth (``ZeroDivisionError``).
  Each (class, threshold) cell is scored by a separate call, and such a cell gets the value the
  script's own convention gives: 0.0 with ground truth (no true positive), ``nan`` without.
- The script calls ``np.in1d``, removed in NumPy 2.4: while it runs, its module sees a numpy
  namespace that adds ``in1d`` (``np.isin(...).ravel()``, NumPy's documented replacement);
  numpy itself is not modified.

CLI: ``python -m analysis.cityscapes_eval GT_JSON GTFINE_DIR PREDICTIONS -o OUT.json [--jobs N]``
with ``GTFINE_DIR`` the split folder (e.g. ``datasets/cityscapes/gtFine/val``). OUT.json holds
``AP``, ``AP50`` (x100), ``per_class`` and ``per_class_AP50`` (class name -> AP x100), and
counts; it is written atomically.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import math
import os
import sys
import tempfile
import types
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Sequence

import numpy as np

from analysis.coco_format import CocoFormatError, load_ground_truth, load_results
from analysis.io import check_outputs, write_json_atomic
from analysis.workers import cap_jobs

__all__ = ["CLASSES", "CityscapesEvalError", "evaluate_cityscapes", "main"]

#: The evaluated instance classes, in cityscapesScripts' order (hasInstances, not ignoreInEval).
CLASSES = ("person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_instanceIds.png"


class CityscapesEvalError(ValueError):
    """Bad input for the Cityscapes evaluation; the message names the file or entry at fault."""


def _cs_eval_module():
    from cityscapesscripts.evaluation import evalInstanceLevelSemanticLabeling as cs_eval

    return cs_eval


@contextlib.contextmanager
def _numpy_for_cityscapes(cs_eval):
    """Give cityscapesScripts' module a numpy with ``in1d`` while it runs (see module doc)."""
    if hasattr(np, "in1d"):
        yield
        return
    compat = types.ModuleType("numpy")
    compat.__dict__.update(np.__dict__)
    compat.in1d = lambda ar1, ar2: np.isin(ar1, ar2).ravel()
    saved = cs_eval.np
    cs_eval.np = compat
    try:
        yield
    finally:
        cs_eval.np = saved


def _script_args(cs_eval, prediction_root: Path):
    """A private copy of the script's settings (its module-level ``args``), quiet, no files."""
    args = copy.deepcopy(cs_eval.args)
    args.quiet = True
    args.JSONOutput = False
    args.distanceAvailable = False
    # abspath, not resolve: the script compares its own abspath()s of the mask files with it.
    args.predictionPath = os.path.abspath(prediction_root)
    cs_eval.setInstanceLabels(args)
    if tuple(args.instLabels) != CLASSES:
        raise CityscapesEvalError(f"cityscapesscripts evaluates {args.instLabels}, expected "
                                  f"{list(CLASSES)}")
    return args


def _label_images(images: List[dict], gtfine_dir: Path, source: str) -> Dict[int, Path]:
    """image id -> its ``*_gtFine_instanceIds.png``, checked to exist and match the JSON size."""
    from PIL import Image

    if not gtfine_dir.is_dir():
        raise CityscapesEvalError(f"{gtfine_dir}: missing gtFine split folder (expected e.g. "
                                  "cityscapes/gtFine/val with one folder per city)")
    out = {}
    for img in images:
        name = img.get("file_name")
        if not isinstance(name, str) or not name.endswith(IMAGE_SUFFIX):
            raise CityscapesEvalError(
                f"{source}: image id {img['id']}: file_name {name!r} is not "
                f"'<city>/<frame>{IMAGE_SUFFIX}' (dcl_data.cityscapes_convert)")
        path = gtfine_dir / (name[: -len(IMAGE_SUFFIX)] + LABEL_SUFFIX)
        if not path.is_file():
            raise CityscapesEvalError(f"{path}: missing label image of {name} (image id "
                                      f"{img['id']}); is {gtfine_dir} the right gtFine split?")
        with Image.open(path) as im:
            size = im.size
        if size != (img["width"], img["height"]):
            raise CityscapesEvalError(f"{path}: {size[0]}x{size[1]} pixels, but {source} says "
                                      f"{img['width']}x{img['height']} for image id {img['id']}")
        out[int(img["id"])] = path.resolve()
    return out


def _match_images(items: Sequence[tuple], prediction_root: str) -> dict:
    """Write the script's prediction files for some images and run its matching on them.

    ``items``: ``(label_png, stem, [(rle, label_id, score), ...])`` per image. Returns the
    script's ``matches`` dict (keyed by label image path). Runs in a worker process.
    """
    from PIL import Image
    from pycocotools import mask as mask_utils

    cs_eval = _cs_eval_module()
    root = Path(os.path.abspath(prediction_root))
    args = _script_args(cs_eval, root)
    gt_files, pred_files = [], []
    for label_png, stem, predictions in items:
        lines = []
        for k, (rle, label_id, score) in enumerate(predictions):
            mask_name = f"masks/{stem}_{k}.png"
            Image.fromarray(mask_utils.decode(rle)).save(root / mask_name)
            lines.append(f"{mask_name} {label_id} {score!r}\n")
        txt = root / f"{stem}_pred.txt"
        txt.write_text("".join(lines))
        gt_files.append(str(label_png))
        pred_files.append(str(txt))
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), _numpy_for_cityscapes(cs_eval):
            gt_instances = cs_eval.instances2dict(gt_files, False)
            return cs_eval.matchGtWithPreds(pred_files, gt_files, gt_instances, args)
    except SystemExit:  # the script's printError exits after printing "ERROR: ..."
        raise CityscapesEvalError("cityscapesScripts stopped: "
                                  + (out.getvalue().strip().splitlines() or ["?"])[-1]) from None


def _has_ground_truth(matches: dict, label: str, min_region_size: float) -> bool:
    """Whether ``label`` has a scored ground-truth instance (the script's own filter)."""
    return any(gt["instID"] >= 1000 and gt["pixelCount"] >= min_region_size
               for m in matches.values() for gt in m["groundTruth"][label])


def _ap_matrix(cs_eval, matches: dict, args) -> np.ndarray:
    """AP ``[1, classes, thresholds]`` from ``evaluateMatches``, one (class, threshold) per call."""
    aps = np.zeros((1, len(args.instLabels), len(args.overlaps)), dtype=float)
    for c, label in enumerate(args.instLabels):
        for t, threshold in enumerate(args.overlaps):
            cell = copy.copy(args)
            cell.instLabels = [label]
            cell.overlaps = np.array([threshold])
            try:
                with _numpy_for_cityscapes(cs_eval):
                    aps[0, c, t] = cs_eval.evaluateMatches(matches, cell)[0, 0, 0]
            except (IndexError, ZeroDivisionError):
                # cityscapesScripts' known crashes (module doc): its convention's value.
                has_gt = _has_ground_truth(matches, label, args.minRegionSizes[0])
                aps[0, c, t] = 0.0 if has_gt else math.nan
    return aps


def evaluate_cityscapes(gt_json: Any, gtfine_dir: str | Path, predictions: Any, *,
                        jobs: int = 1) -> Dict[str, Any]:
    """Cityscapes instance-level AP of COCO-format predictions (cityscapesScripts' evaluation).

    Args:
        gt_json: the COCO ground truth of the split (path or parsed dict) as
            ``dcl_data.cityscapes_convert`` writes it: ``file_name``
            ``<city>/<frame>_leftImg8bit.png``, categories named as cityscapesScripts' labels.
        gtfine_dir: the gtFine split folder (``.../gtFine/val``) holding
            ``<city>/*_gtFine_instanceIds.png``.
        predictions: results (path or parsed list): ``image_id``, ``category_id`` (the ground
            truth's ids), ``segmentation`` (RLE or polygons at the image size), ``score``.
        jobs: worker processes for writing masks and matching (results do not depend on it),
            at most one per usable CPU (:func:`analysis.workers.cap_jobs`).

    Returns:
        ``{"AP", "AP50"}`` x100 (means over classes with ground truth; ``nan`` if none has),
        ``"per_class"`` and ``"per_class_AP50"`` (class name -> x100, ``nan`` without ground
        truth), ``"num_images"``, ``"num_predictions"``.

    Raises:
        CityscapesEvalError: missing gtFine folder or label image, a size mismatch, a
            ``file_name`` not in the Cityscapes convention, a predicted category that is not a
            Cityscapes instance class, or bad COCO input (unknown image/category ids, masks of
            the wrong size, ... as :mod:`analysis.coco_eval` reports them).
    """
    from cityscapesscripts.helpers.labels import name2label

    if jobs < 1:
        raise CityscapesEvalError(f"jobs must be >= 1, got {jobs}")
    jobs = cap_jobs(jobs)
    try:
        if isinstance(gt_json, (str, Path)):
            source = str(gt_json)
            with open(gt_json, "rb") as f:
                raw = json.load(f)
        else:
            source, raw = "<ground truth>", gt_json
        gt = load_ground_truth(raw)
        results = load_results(predictions, gt)
    except FileNotFoundError:
        raise CityscapesEvalError(f"{gt_json}: ground-truth file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CityscapesEvalError(f"{gt_json}: not valid JSON ({err})") from None
    except CocoFormatError as err:
        raise CityscapesEvalError(str(err).replace("<ground truth>", source)) from None
    label_pngs = _label_images(raw["images"], Path(gtfine_dir), source)

    label_of = {}
    for cat in gt.categories:
        label = name2label.get(cat["name"])
        if label is not None and label.name in CLASSES:
            label_of[cat["id"]] = label.id
    per_image: Dict[int, list] = {i: [] for i in label_pngs}
    for k in range(len(results)):
        cat = int(results.category_ids[k])
        if cat not in label_of:
            name = next(c["name"] for c in gt.categories if c["id"] == cat)
            raise CityscapesEvalError(
                f"{results.source}: entry {int(results.entry_index[k])}: category {cat} "
                f"({name!r}) is not a Cityscapes instance class ({', '.join(CLASSES)})")
        per_image[int(results.image_ids[k])].append(
            (results.rles[k], label_of[cat], float(results.scores[k])))

    cs_eval = _cs_eval_module()
    with tempfile.TemporaryDirectory(prefix="cityscapes_eval_") as tmp:
        root = Path(tmp)
        (root / "masks").mkdir()
        items = [(label_pngs[i], f"img{i}", per_image[i]) for i in sorted(label_pngs)]
        chunks = [items[j::jobs] for j in range(jobs) if items[j::jobs]]
        matches: dict = {}
        if jobs == 1:
            matches.update(_match_images(items, tmp))
        else:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                for part in pool.map(_match_images, chunks, [tmp] * len(chunks)):
                    matches.update(part)
        args = _script_args(cs_eval, root)
        aps = _ap_matrix(cs_eval, matches, args)
    with np.errstate(all="ignore"), _quiet_nan_warnings():
        averages = cs_eval.computeAverages(aps, args)
    per_class = {name: 100.0 * float(averages["classes"][name]["ap"]) for name in CLASSES}
    per_class_50 = {name: 100.0 * float(averages["classes"][name]["ap50%"]) for name in CLASSES}
    return {
        "AP": 100.0 * float(averages["allAp"]),
        "AP50": 100.0 * float(averages["allAp50%"]),
        "per_class": per_class,
        "per_class_AP50": per_class_50,
        "num_images": len(label_pngs),
        "num_predictions": len(results),
    }


@contextlib.contextmanager
def _quiet_nan_warnings():
    # nanmean over classes that all lack ground truth warns "Mean of empty slice"; the nan
    # it returns is the documented answer.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("gt_json",
                        help="COCO ground truth of the split (dcl_data.cityscapes_convert)")
    parser.add_argument("gtfine_dir",
                        help="gtFine split folder, e.g. datasets/cityscapes/gtFine/val")
    parser.add_argument("predictions", help="COCO-format results JSON")
    parser.add_argument("-o", "--out", required=True, help="output JSON (written atomically)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="worker processes (default 1; capped at the number of CPUs this "
                             "process may use)")
    args = parser.parse_args(argv)
    try:
        check_outputs([args.out], [args.gt_json, args.predictions])
        result = evaluate_cityscapes(args.gt_json, args.gtfine_dir, args.predictions,
                                     jobs=args.jobs)
        write_json_atomic(args.out, result, indent=2)
    except (CityscapesEvalError, ValueError, OSError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    print(json.dumps({"AP": round(result["AP"], 2) if math.isfinite(result["AP"]) else None,
                      "AP50": round(result["AP50"], 2) if math.isfinite(result["AP50"]) else None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
