"""Compressed RLE strings decoded without masks (analysis.rle), and COCO-format loading
(analysis.coco_format) refusing, with one line, the strings that would make pycocotools hang or
read past the end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from pycocotools import mask as mask_utils

import analysis.rle as rle_module
from analysis.coco_format import CocoFormatError, load_ground_truth, load_results
from analysis.rle import RLE_PROBLEMS, decode_rle_counts, rle_pixel_totals

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBLEM = {name: code for code, name in enumerate(RLE_PROBLEMS)}


def _runs_of(mask: np.ndarray) -> list[int]:
    """Run lengths of a mask in column-major order, starting with a (maybe empty) 0-run."""
    flat = mask.ravel(order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], change, [flat.size]])).tolist()
    return [0] + runs if flat[0] else runs


def _masks() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = []
    for t in range(120):
        h, w = rng.integers(1, 70, 2)
        out.append(rng.random((h, w)) < rng.random())
    out += [np.zeros((5, 7), bool), np.ones((5, 7), bool)]
    big = np.zeros((3000, 2000), bool)          # runs of millions of pixels: 5-char groups
    big[1500:, 100:] = True
    big[7, 3] = True
    out += [big, rng.random((700, 900)) < 0.001]
    return out


@pytest.mark.parametrize("batch", [1 << 20, 64, 1])
def test_decode_rle_counts_matches_pycocotools_masks(monkeypatch, batch):
    monkeypatch.setattr(rle_module, "_DECODE_BATCH", batch)   # batch edges too
    masks = _masks()
    rles = [mask_utils.encode(np.asfortranarray(m.astype(np.uint8))) for m in masks]
    strings = [r["counts"] if k % 2 else r["counts"].decode() for k, r in enumerate(rles)]
    runs, offsets, problem = decode_rle_counts(strings)
    assert runs.dtype == np.uint32 and (problem == 0).all()
    for k, m in enumerate(masks):
        assert runs[offsets[k]:offsets[k + 1]].tolist() == _runs_of(m)
    totals, problem = rle_pixel_totals(strings)
    assert totals.tolist() == [m.size for m in masks] and (problem == 0).all()


def test_bad_strings_get_named_problems():
    strings = ["0b1", "", "0b", "ab\u00e9", "0oooooo1", "0ooooo1", "^3F", "03:0", "0 1"]
    runs, offsets, problem = decode_rle_counts(strings)
    names = [list(RLE_PROBLEMS)[p] for p in problem]
    assert names == ["", "empty", "truncated", "alphabet", "long run", "", "", "", "alphabet"]
    k = strings.index("0b1")
    assert runs[offsets[k]:offsets[k + 1]].tolist() == [0, 50]        # 50 pixels, not 100
    k = strings.index("03:0")                                          # run 3 = x3 + run 1
    assert runs[offsets[k]:offsets[k + 1]].tolist() == [0, 3, 10, 3]
    k = strings.index("^3F")                                           # 110, then -10
    assert runs[offsets[k]:offsets[k + 1]].tolist() == [110, 2**32 - 10]


def _gt(h: int = 10, w: int = 10) -> dict:
    full = mask_utils.encode(np.asfortranarray(np.ones((h, w), np.uint8)))
    return {"images": [{"id": 7, "height": h, "width": w}],
            "categories": [{"id": 1, "name": "thing"}],
            "annotations": [{"id": 3, "image_id": 7, "category_id": 1, "iscrowd": 0,
                             "segmentation": {"size": [h, w],
                                              "counts": full["counts"].decode()}}]}


def _det(counts) -> dict:
    return {"image_id": 7, "category_id": 1, "score": 0.9,
            "segmentation": {"size": [10, 10], "counts": counts}}


@pytest.mark.parametrize("counts, message", [
    ("0b1", "add up to 50 pixels, not height*width = 100"),
    ("0b", "ends inside a run"),
    ("", "is empty"),
    ("0\u00e91", "outside the RLE alphabet"),
    (b"0b1", "add up to 50 pixels"),
    ("^3F", "negative run length"),
    ("0oooooo1", "run of more than 6 characters"),
])
def test_results_with_bad_compressed_rle_are_refused(counts, message):
    gt = load_ground_truth(_gt())
    good = _det(_gt()["annotations"][0]["segmentation"]["counts"])
    with pytest.raises(CocoFormatError) as err:
        load_results([good, _det(counts)], gt)
    text = str(err.value)
    assert text.startswith("<results>: entry 1 (image_id=7): compressed RLE 'counts' ")
    assert message in text and "\n" not in text


def test_ground_truth_with_bad_compressed_rle_is_refused():
    gt = _gt()
    gt["annotations"][0]["segmentation"]["counts"] = "0b1"
    with pytest.raises(CocoFormatError,
                       match=r"^<ground truth>: annotations\[0\] \(id=3, image_id=7\): "
                             r"compressed RLE 'counts' add up to 50 pixels"):
        load_ground_truth(gt)


def test_uncompressed_rle_still_checked_and_converted():
    gt = _gt()
    gt["annotations"][0]["segmentation"]["counts"] = [0, 50]
    with pytest.raises(CocoFormatError, match=r"annotations\[0\] \(id=3\): uncompressed RLE "
                                              r"'counts' sum to 50, not height\*width = 100"):
        load_ground_truth(gt)
    gt["annotations"][0]["segmentation"]["counts"] = [30, 70]
    assert load_ground_truth(gt).ann_areas.tolist() == [70.0]


def _snapshot(*paths) -> list[tuple[bytes, int]]:
    return [(open(p, "rb").read(), os.stat(p).st_mtime_ns) for p in paths]


@pytest.mark.parametrize("command", [
    ["-m", "analysis.seg_errors", "GT", "DT", "-o", "OUT"],
    ["-c", "import sys; from analysis.coco_eval import evaluate_segm; "
           "evaluate_segm(sys.argv[1], sys.argv[2])", "GT", "DT"],
])
def test_rle_that_hung_pycocotools_fails_fast(tmp_path, command):
    """Issue 15, case 1: a 10x10 image and the prediction counts "0b1" (50 pixels) made
    pycocotools loop forever in dcl-seg-errors and in the workflow's evaluation."""
    g, d, out = tmp_path / "gt.json", tmp_path / "dt.json", tmp_path / "out.json"
    g.write_text(json.dumps(_gt()))
    d.write_text(json.dumps([_det("0b1")]))
    before = _snapshot(g, d)
    argv = [str({"GT": g, "DT": d, "OUT": out}.get(a, a)) for a in command]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=120)   # a regression fails here instead of hanging
    assert done.returncode != 0
    assert "dt.json: entry 0 (image_id=7): compressed RLE 'counts' add up to 50" in done.stderr
    if command[0] == "-m":
        assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert _snapshot(g, d) == before
    assert sorted(os.listdir(tmp_path)) == ["dt.json", "gt.json"]


def _reference_runs(s: str) -> list[int] | None:
    """pycocotools' rleFrString read character by character (uint32 runs); None where our
    decoder must report a problem (ends inside a run, or a run over 6 characters)."""
    runs, p = [], 0
    while p < len(s):
        x = k = 0
        more = True
        while more:
            if p == len(s) or k == 6:
                return None
            c = ord(s[p]) - 48
            x |= (c & 0x1f) << 5 * k
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << 5 * k
        if len(runs) > 2:
            x += runs[-2]
        runs.append(x % 2**32)
    return runs


def test_decoder_agrees_with_pycocotools_semantics_on_random_strings(monkeypatch):
    monkeypatch.setattr(rle_module, "_DECODE_BATCH", 500)
    rng = np.random.default_rng(1)
    alphabet = np.array([chr(48 + c) for c in range(64)])
    strings = ["".join(rng.choice(alphabet, rng.integers(1, 40))) for _ in range(3000)]
    runs, offsets, problem = decode_rle_counts(strings)
    for k, s in enumerate(strings):
        want = _reference_runs(s)
        if want is None:
            assert problem[k] in (PROBLEM["truncated"], PROBLEM["long run"]), s
        else:
            assert problem[k] == 0 and runs[offsets[k]:offsets[k + 1]].tolist() == want, s
