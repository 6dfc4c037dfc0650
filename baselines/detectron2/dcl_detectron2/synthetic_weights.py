"""Stand-in pretrained files in each real format, for the preflight run (``scale=preflight``).

They let every weight-loading path run without the real downloads: same file layout and key
names as the published files, random weights, but batch-norm statistics ESTIMATED on generated
images, so under FrozenBN (which the paper recipes use) every layer's output is normalised as
in a trained network. Random convolutions with the default statistics (mean 0, variance 1)
instead let activations grow with depth until detectron2 stops with "Predicted boxes or scores
contain Inf/NaN" in the first iteration (found with bench_train_step.py at 1024 x 2048).

The images are drawn as the preflight datasets draw theirs (dcl_data.preflight_sets.
sample_images: smooth colour fields with textured ellipses, 480 x 640), because a random network
normalises only the input statistics its BN was estimated on. Estimated on i.i.d. pixel noise
instead, the same ResNet-50 fed the preflight's smooth COCO images grew to res5 std 8.4 (1.0 on
the noise), and SparseInst started at loss_cls ~2000 and loss_mask ~1600 (2 images; 1464 and 957
logged at iteration 4 of a 16-image preflight run), RefineMask at loss_semantic 79.

Formats (config.yaml ``weights``):

- ``torchvision_pth``: torchvision ``resnet50`` (``resnet50-0676ba61.pth``: no
  ``num_batches_tracked``) or ``swin_t`` (LayerNorm only: nothing to estimate) state dict;
  statistics estimated on ImageNet-normalised RGB input.
- ``detectron2_msra_pkl``: MSRA's Caffe2 R-50 (``R-50.pkl``): a pickled ``{name: ndarray}`` with
  Caffe2 names (``res2_0_branch2a_w``, ``res2_0_branch2a_bn_s``/``_b``, ``fc1000_w``), batch norm
  folded into scale and bias; stride in the 1x1 conv, BGR input minus the pixel mean, std 1 (the
  statistics are estimated on detectron2's own ResNet built that way).
- ``detectron2_pkl``: a model-zoo detector (``model_final_f10217.pkl``): ``{"model": {name:
  ndarray}, "__author__": ...}`` of an 80-class Mask R-CNN R50-FPN whose backbone is the MSRA
  stand-in above.

CLI: ``python -m dcl_detectron2.synthetic_weights FORMAT OUT [--arch resnet50|swin_t]``.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import torch
from torch import nn

__all__ = ["FORMATS", "estimate_bn_statistics", "msra_r50", "coco_mask_rcnn", "torchvision_weights",
           "write"]

FORMATS = ("torchvision_pth", "detectron2_msra_pkl", "detectron2_pkl")
_IMAGENET_MEAN_RGB = (123.675, 116.28, 103.53)
_IMAGENET_STD_RGB = (58.395, 57.12, 57.375)
_MSRA_MEAN_BGR = (103.53, 116.28, 123.675)
# Estimation batch: COCO's common image size; 8 images give every res5 channel 2,400 samples.
_NUM_IMAGES, _SIZE = 8, (480, 640)


def _images(num: int, size: Tuple[int, int], seed: int) -> torch.Tensor:
    """``[num, 3, H, W]`` float RGB images in 0-255, drawn as the preflight's COCO images."""
    from dcl_data.preflight_sets import sample_images

    return torch.from_numpy(sample_images(num, *size, seed=seed)).permute(0, 3, 1, 2).float()


@torch.no_grad()
def estimate_bn_statistics(model: nn.Module, batch: torch.Tensor, forward=None) -> None:
    """Set every BatchNorm's running mean/var to their values on ``batch`` (a cumulative
    average over one pass, ``momentum=None``), in place. ``forward(model, batch)`` defaults to
    ``model(batch)``."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    (forward or (lambda m, x: m(x)))(model, batch)
    model.eval()
    for bn in bns:
        bn.momentum = 0.1


def _normalised(images: torch.Tensor, mean, std) -> torch.Tensor:
    return (images - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def torchvision_weights(arch: str = "resnet50", seed: int = 0, images: int = _NUM_IMAGES,
                        size: Tuple[int, int] = _SIZE) -> Dict[str, torch.Tensor]:
    """A torchvision classifier's state dict (``resnet50`` or ``swin_t``), statistics estimated
    on ``images`` generated RGB images of ``size`` (H, W), ImageNet mean/std."""
    import torchvision.models as tvm

    torch.manual_seed(seed)
    model = getattr(tvm, arch)(weights=None)
    estimate_bn_statistics(model, _normalised(_images(images, size, seed), _IMAGENET_MEAN_RGB,
                                              _IMAGENET_STD_RGB))
    # The published files predate num_batches_tracked.
    return {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


def _d2_resnet(stride_in_1x1: bool = True):
    from detectron2.config import get_cfg
    from detectron2.layers import ShapeSpec
    from detectron2.modeling.backbone import build_resnet_backbone

    cfg = get_cfg()
    cfg.MODEL.RESNETS.DEPTH = 50
    cfg.MODEL.RESNETS.NORM = "BN"
    cfg.MODEL.RESNETS.STRIDE_IN_1X1 = stride_in_1x1
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    return build_resnet_backbone(cfg, ShapeSpec(channels=3))


def _caffe2_name(d2_key: str) -> str:
    """MSRA's Caffe2 name of a detectron2 ResNet key (what detectron2's renaming inverts)."""
    parts = d2_key.split(".")
    suffix = {"weight": "w", "bias": "b"}
    if parts[0] == "stem":  # stem.conv1.weight / stem.conv1.norm.{weight,bias}
        return "conv1_w" if parts[-2] == "conv1" else f"res_conv1_bn_{'s' if parts[-1] == 'weight' else 'b'}"
    stage, block, layer = parts[0], parts[1], parts[2]
    branch = {"conv1": "branch2a", "conv2": "branch2b", "conv3": "branch2c", "shortcut": "branch1"}[layer]
    base = f"{stage}_{block}_{branch}"
    if parts[3] == "norm":
        return f"{base}_bn_{'s' if parts[4] == 'weight' else 'b'}"
    return f"{base}_{suffix[parts[3]]}"


def msra_r50(seed: int = 0, images: int = _NUM_IMAGES,
             size: Tuple[int, int] = _SIZE) -> Dict[str, np.ndarray]:
    """MSRA R-50 in Caffe2 layout: ``{caffe2 name: float32 ndarray}``, BN folded (FrozenBN's
    scale = gamma / sqrt(var + eps), bias = beta - mean * scale), plus ``fc1000_w``/``_b``."""
    torch.manual_seed(seed)
    body = _d2_resnet(stride_in_1x1=True)
    bgr = _images(images, size, seed).flip(1)
    estimate_bn_statistics(body, _normalised(bgr, _MSRA_MEAN_BGR, (1.0, 1.0, 1.0)))
    out: Dict[str, np.ndarray] = {}
    for name, module in body.named_modules():
        if isinstance(module, nn.Conv2d):
            out[_caffe2_name(f"{name}.weight")] = module.weight.detach().numpy().copy()
            bn = module.norm
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            out[_caffe2_name(f"{name}.norm.weight")] = scale.detach().numpy().copy()
            out[_caffe2_name(f"{name}.norm.bias")] = (bn.bias - bn.running_mean * scale).detach().numpy().copy()
    out["fc1000_w"] = (torch.randn(1000, 2048) * 0.01).numpy()
    out["fc1000_b"] = np.zeros(1000, np.float32)
    return out


def coco_mask_rcnn(seed: int = 0) -> dict:
    """An 80-class Mask R-CNN R50-FPN (detectron2's COCO configs) as a model-zoo ``.pkl`` dict,
    its backbone the MSRA stand-in, the rest detectron2's initialisation."""
    from detectron2.checkpoint.c2_model_loading import align_and_update_state_dicts
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    cfg = get_cfg()
    cfg.merge_from_file(str(Path(__file__).resolve().parents[1] / "configs" / "Base-RCNN-FPN.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.MASK_ON = True
    cfg.MODEL.RESNETS.DEPTH = 50
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 80
    torch.manual_seed(seed)
    model = build_model(cfg)
    # detectron2's own renaming of MSRA's names, as DetectionCheckpointer applies it.
    msra = {k: torch.from_numpy(v) for k, v in msra_r50(seed).items()}
    aligned = align_and_update_state_dicts(model.state_dict(), msra, c2_conversion=True)
    model.load_state_dict(aligned, strict=False)
    weights = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return {"model": weights, "__author__": "synthetic stand-in (dcl_detectron2.synthetic_weights)"}


def write(fmt: str, out: Path, arch: str = "resnet50", seed: int = 0) -> Path:
    """Write a stand-in file of format ``fmt`` to ``out`` atomically; returns ``out``.

    Raises:
        ValueError: an unknown format, or an ``arch`` the format has no stand-in for.
    """
    from analysis.io import atomic_path

    if fmt == "torchvision_pth":
        if arch not in ("resnet50", "swin_t"):
            raise ValueError(f"torchvision_pth stand-ins: resnet50 or swin_t, not {arch!r}")
        data, save = torchvision_weights(arch, seed), "torch"
    elif fmt == "detectron2_msra_pkl":
        data, save = msra_r50(seed), "pickle"
    elif fmt == "detectron2_pkl":
        data, save = coco_mask_rcnn(seed), "pickle"
    else:
        raise ValueError(f"no stand-in for format {fmt!r}; formats: {FORMATS}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        if save == "torch":
            torch.save(data, tmp)
        else:
            with open(tmp, "wb") as fh:
                pickle.dump(data, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dcl_detectron2.synthetic_weights",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("format", choices=FORMATS)
    parser.add_argument("out", type=Path)
    parser.add_argument("--arch", default="resnet50", help="torchvision_pth: resnet50 or swin_t")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(min(torch.get_num_threads(), 2))
    try:
        write(args.format, args.out, args.arch, args.seed)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote a {args.format} stand-in to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
