#!/usr/bin/env python
"""Convert torchvision's ImageNet Swin weights into a detectron2 checkpoint for ``MODEL.WEIGHTS``.

Reads a local file, never downloads: torchvision's ``swin_t`` state dict (e.g.
``swin_t-704ceda3.pth``, ``torchvision.models.Swin_T_Weights.IMAGENET1K_V1``) fetched by you.
Writes ``{"model": {name: tensor}}`` with the keys of ``build_swin_t_fpn_backbone``
(``backbone.bottom_up.features.*``), loadable by detectron2's ``DetectionCheckpointer`` without
its name-matching heuristics. The classifier's final norm and head are dropped: the detection
backbone has its own per-stage output norms, which start fresh (the Swin paper's detection
setting). Every tensor is checked against torchvision's architecture first.

Usage::

    python baselines/detectron2/tools/convert_torchvision_swin.py swin_t-704ceda3.pth \\
        pretrained/swin_t_d2.pth [--arch swin_t]

then ``MODEL.WEIGHTS pretrained/swin_t_d2.pth`` with ``configs/coco/mask_rcnn_swin_T_FPN_1x.yaml``
(``swin_s`` / ``swin_b`` need ``MODEL.SWIN`` set to their sizes).
"""

from __future__ import annotations

import argparse
import sys
from typing import Dict

import torch
import torchvision.models as tvm

from analysis.checkpoint_io import ConversionError, load_state_dict, save_checkpoint

#: Prefix of the Swin body inside a detectron2 Mask R-CNN built with build_swin_t_fpn_backbone.
D2_PREFIX = "backbone.bottom_up."
#: torchvision architectures with the same block layout as the detectron2 backbone.
ARCHS = ("swin_t", "swin_s", "swin_b")
#: Classification-only parameters of torchvision's model, not used for detection.
_DROPPED = ("norm.", "head.")


def convert(state: Dict[str, torch.Tensor], arch: str = "swin_t") -> Dict[str, torch.Tensor]:
    """Rename a torchvision Swin state dict for detectron2.

    Args:
        state: torchvision ``SwinTransformer.state_dict()`` (``features.*``, ``norm.*``,
            ``head.*``), float tensors.
        arch: ``swin_t``, ``swin_s`` or ``swin_b``: the architecture the tensors must match.

    Returns:
        ``{"backbone.bottom_up.features.<rest>": tensor}`` for every ``features.*`` entry.

    Raises:
        ConversionError: a missing or unexpected key, or a shape differing from ``arch``.
    """
    if arch not in ARCHS:
        raise ConversionError(f"unknown arch {arch!r}; expected one of {ARCHS}")
    expected = getattr(tvm, arch)(weights=None).state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise ConversionError(
            f"not a torchvision {arch} state dict: {len(missing)} missing keys (first: "
            f"{missing[:1]}), {len(extra)} unexpected keys (first: {extra[:1]})")
    for key, ref in expected.items():
        if tuple(state[key].shape) != tuple(ref.shape):
            raise ConversionError(f"{key}: shape {tuple(state[key].shape)}, but {arch} has "
                                  f"{tuple(ref.shape)}")
    return {D2_PREFIX + k: v.detach().clone() for k, v in state.items()
            if not k.startswith(_DROPPED)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="torchvision Swin state dict (.pth)")
    parser.add_argument("output", help="detectron2 checkpoint to write (.pth)")
    parser.add_argument("--arch", default="swin_t", choices=ARCHS)
    args = parser.parse_args(argv)
    try:
        model = convert(load_state_dict(args.source), args.arch)
    except ConversionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    save_checkpoint({"model": model, "__author__": f"torchvision {args.arch}, converted by "
                                                   "convert_torchvision_swin.py"}, args.output)
    print(f"wrote {len(model)} tensors to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
