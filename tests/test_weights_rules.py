"""config.yaml `weights` and workflow/rules/weights.smk: each paper model starts from the file it
was trained from, digests are consistent with what torchvision publishes, and the fetch rule
really runs (against the local server of test_fetch.py): a good file is accepted, a corrupt one
stops the rule with one line and leaves nothing, an UNKNOWN digest is refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from test_fetch import SHA, server  # noqa: F401  (the fixture)
from test_workflow import REPO, snakemake, workdir

CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
WEIGHTS = CONFIG["weights"]
PAPER = CONFIG["presets"]["paper"]["models"]


def _origin(name: str) -> dict:
    """The fetched declaration a (possibly converted) one comes from."""
    w = WEIGHTS[name]
    return _origin(w["convert"]["from"]) if "convert" in w else w


def test_each_paper_model_starts_from_the_weights_it_was_trained_from():
    fmt = {role: _origin(m["weights"])["format"] for role, m in PAPER.items()}
    # detectron2's Mask R-CNN configs: MSRA's caffe2 R-50; SparseInst and RefineMask:
    # torchvision's RGB R-50; Swin-T: torchvision's ImageNet weights; COCO init: a detector.
    assert fmt == {"mask_rcnn": "detectron2_msra_pkl", "mask_rcnn_coco": "detectron2_msra_pkl",
                   "mask_rcnn_coco_init": "detectron2_pkl", "mask_rcnn_swin_t": "torchvision_pth",
                   "sparseinst": "torchvision_pth", "refinemask": "torchvision_pth",
                   **{f"contrastmask_{b}_{d}": "torchvision_pth" for b in ("x50", "x101")
                      for d in ("voc2nonvoc", "nonvoc2voc")},
                   # CAC's HRNetV2-W48 and OCRNet: MSRA's ImageNet HRNetV2-W48
                   "hrnet_fcn_40k": "hrnet_pth", "hrnet_fcn_120k": "hrnet_pth",
                   "ocrnet_120k": "hrnet_pth"}
    # The file the mmseg configs name by default (mmseg's open-mmlab:// alias) is the declared one.
    w48 = (REPO / "baselines/mmseg/configs/_base_/hrnet_w48.py").read_text()
    assert "hrnetv2_w48" in WEIGHTS["msra_hrnetv2_w48"]["url"] and "msra/hrnetv2_w48" in w48
    assert _origin(PAPER["sparseinst"]["weights"]) is _origin(PAPER["refinemask"]["weights"])
    # The file RefineMask's mmdet config names by default is the declared one.
    mmdet_cfg = (REPO / "baselines/mmdet/configs/_base_/refinemask_r50_fpn.py").read_text()
    assert f"checkpoint='{WEIGHTS['torchvision_r50']['file']}'" in mmdet_cfg
    # ContrastMask's configs name the files its paper models declare.
    for role, m in PAPER.items():
        if role.startswith("contrastmask_"):
            text = (REPO / m["config"]).read_text()
            assert f"checkpoint='{WEIGHTS[m['weights']]['file']}'" in text, role


def test_known_digests_agree_with_the_prefix_torchvision_puts_in_the_file_name():
    checked = 0
    for name, w in WEIGHTS.items():
        m = re.search(r"-([0-9a-f]{8})\.pth$", w.get("url", ""))
        if m and w["sha256"] != "UNKNOWN":
            assert w["sha256"].startswith(m.group(1)), name
            checked += 1
    assert checked >= 1


def _workdir(tmp_path, weights):
    return workdir(tmp_path, weights=weights)


def test_fetch_rule_accepts_a_good_file(tmp_path, server):  # noqa: F811
    wd = _workdir(tmp_path, {"tiny": {"file": "pretrained/tiny.pth", "format": "torchvision_pth",
                                      "url": f"{server}/good.bin", "sha256": SHA}})
    snakemake(wd, "--cores", "1", "pretrained/tiny.pth")
    assert (wd / "pretrained/tiny.pth").stat().st_size == 153600
    assert "sha256 " + SHA + " verified" in (wd / "logs/weights/fetch_tiny.log").read_text()


def test_fetch_rule_stops_on_a_corrupt_file_with_one_line_and_keeps_nothing(tmp_path, server):  # noqa: F811
    wd = _workdir(tmp_path, {"tiny": {"file": "pretrained/tiny.pth", "format": "torchvision_pth",
                                      "url": f"{server}/corrupt.bin", "sha256": SHA}})
    result = snakemake(wd, "--cores", "1", "pretrained/tiny.pth", check=False)
    assert result.returncode != 0
    log = (wd / "logs/weights/fetch_tiny.log").read_text()
    assert log.count("\n") == 1 and "differs from the declared" in log and "deleted" in log
    assert not list((wd / "pretrained").glob("tiny*"))


def test_fetch_rule_refuses_an_unknown_digest(tmp_path, server):  # noqa: F811
    wd = _workdir(tmp_path, {"tiny": {"file": "pretrained/tiny.pth", "format": "torchvision_pth",
                                      "url": f"{server}/good.bin", "sha256": "UNKNOWN"}})
    result = snakemake(wd, "--cores", "1", "pretrained/tiny.pth", check=False)
    assert result.returncode != 0
    log = (wd / "logs/weights/fetch_tiny.log").read_text()
    assert log.startswith("error: refusing to fetch") and "weights.tiny.sha256 is UNKNOWN" in log


@pytest.mark.parametrize("bad, message", [
    ({"mask_rcnn": "nope"}, "presets.paper.models.mask_rcnn.weights: 'nope' is not declared"),
    ({"refinemask": "msra_r50"}, "mmdet cannot start from msra_r50 (format detectron2_msra_pkl)"),
    ({"sparseinst": "torchvision_r50"},
     "detectron2 cannot start from torchvision_r50 (format torchvision_pth)"),
])
def test_a_model_naming_unusable_weights_fails_at_parse_time(tmp_path, bad, message):
    presets = CONFIG["presets"]
    paper = {**presets["paper"], "models": {role: {**m, "weights": bad.get(role, m.get("weights"))}
                                            for role, m in PAPER.items()}}
    wd = workdir(tmp_path, scale="paper", presets={**presets, "paper": paper})
    result = snakemake(wd, "-n", "--cores", "1", check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
