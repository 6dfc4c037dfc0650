#!/usr/bin/env python
"""Convert torchvision's ImageNet ResNet weights into a detectron2 checkpoint for ``MODEL.WEIGHTS``.

SparseInst trains from torchvision's R-50 (RGB input, ImageNet mean/std, stride in the 3x3 conv;
its configs name detectron2's ``ImageNetPretrained/torchvision/R-50.pkl``, the same tensors), not
from the MSRA ``R-50.pkl`` of the Mask R-CNN configs (BGR, std 1, stride in the 1x1 conv). This
reads a local torchvision state dict (``resnet50-0676ba61.pth``, ``ResNet50_Weights.IMAGENET1K_V1``;
config.yaml ``weights: torchvision_r50``) and writes ``{"model": {name: tensor}}`` under
detectron2's ResNet names with an explicit prefix, so ``DetectionCheckpointer`` loads it without
name-matching heuristics and strict loading (``MODEL.WEIGHTS_CHECK``) can check every key:

    conv1 / bn1                      -> <prefix>stem.conv1 / stem.conv1.norm
    layer{i}.{j}.conv{k} / bn{k}     -> <prefix>res{i+1}.{j}.conv{k} / conv{k}.norm
    layer{i}.{j}.downsample.0 / .1   -> <prefix>res{i+1}.{j}.shortcut / shortcut.norm

The classifier (``fc.*``) and ``num_batches_tracked`` are dropped. Every tensor is checked
against torchvision's architecture first.

Usage::

    python baselines/detectron2/tools/convert_torchvision_resnet.py resnet50-0676ba61.pth \\
        pretrained/R-50_torchvision_d2.pth [--arch resnet50] [--prefix backbone.]

``--prefix backbone.`` fits SparseInst (``build_resnet_backbone``); a ResNet under an FPN sits
at ``backbone.bottom_up.``.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Dict, List

import torch
import torchvision.models as tvm

from analysis.checkpoint_io import (ConversionError, RenameRule, load_state_dict,
                                    rename_state_dict, save_checkpoint)

ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


def _block(rest: str):
    # torchvision counts stages layer1-4; detectron2 names them after their stride, res2-5.
    def rename(match: re.Match) -> str:
        return f"res{int(match.group(1)) + 1}.{match.group(2)}.{match.expand(rest)}"
    return rename


#: torchvision name (full match) -> detectron2 name (without the prefix).
RULES: List[RenameRule] = [
    (r"fc\..+", None),
    (r".+\.num_batches_tracked", None),
    (r"conv1\.weight", "stem.conv1.weight"),
    (r"bn1\.(weight|bias|running_mean|running_var)", r"stem.conv1.norm.\1"),
    (r"layer(\d)\.(\d+)\.conv(\d)\.weight", _block(r"conv\3.weight")),
    (r"layer(\d)\.(\d+)\.bn(\d)\.(weight|bias|running_mean|running_var)",
     _block(r"conv\3.norm.\4")),
    (r"layer(\d)\.(\d+)\.downsample\.0\.weight", _block("shortcut.weight")),
    (r"layer(\d)\.(\d+)\.downsample\.1\.(weight|bias|running_mean|running_var)",
     _block(r"shortcut.norm.\3")),
]


def convert(state: Dict[str, torch.Tensor], arch: str = "resnet50",
            prefix: str = "backbone.") -> Dict[str, torch.Tensor]:
    """Rename a torchvision ResNet state dict for detectron2.

    Args:
        state: torchvision ``ResNet.state_dict()``, float tensors.
        arch: the architecture the tensors must match (``resnet50``, ...).
        prefix: prepended to every detectron2 name.

    Returns:
        ``{prefix + detectron2 name: tensor}`` for every tensor but ``fc.*`` and
        ``num_batches_tracked``.

    Raises:
        ConversionError: a missing or unexpected key, or a shape differing from ``arch``.
    """
    if arch not in ARCHS:
        raise ConversionError(f"unknown arch {arch!r}; expected one of {ARCHS}")
    expected = getattr(tvm, arch)(weights=None).state_dict()
    # torchvision's published files predate num_batches_tracked: it may be absent.
    missing = sorted(k for k in set(expected) - set(state) if not k.endswith("num_batches_tracked"))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise ConversionError(
            f"not a torchvision {arch} state dict: {len(missing)} missing keys (first: "
            f"{missing[:1]}), {len(extra)} unexpected keys (first: {extra[:1]})")
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ConversionError(f"{key}: shape {tuple(value.shape)}, but {arch} has "
                                  f"{tuple(expected[key].shape)}")
    renamed = rename_state_dict(state, RULES, f"torchvision {arch}")
    return {prefix + name: value for name, value in renamed.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="torchvision ResNet state dict (.pth)")
    parser.add_argument("output", help="detectron2 checkpoint to write (.pth)")
    parser.add_argument("--arch", default="resnet50", choices=ARCHS)
    parser.add_argument("--prefix", default="backbone.",
                        help="key prefix of the ResNet in the detectron2 model (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        model = convert(load_state_dict(args.source), args.arch, args.prefix)
    except ConversionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    save_checkpoint({"model": model, "__author__": f"torchvision {args.arch}, converted by "
                                                   "convert_torchvision_resnet.py"}, args.output)
    print(f"wrote {len(model)} tensors to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
