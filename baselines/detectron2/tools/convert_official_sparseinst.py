#!/usr/bin/env python
"""Convert a checkpoint of the official SparseInst code (hustvl/SparseInst) for ``MODEL.WEIGHTS``.

The official model and this project's compute the same function with different parameter
names (the reference write-up: shared/reference/fidelity-sparseinst-refinemask.md, Sec. 1.2):

- ``encoder.fpn_laterals.i`` / ``encoder.fpn_outputs.i`` are stored coarse to fine (0 = res5);
  here ``encoder.lateral_convs.(2 - i)`` / ``encoder.output_convs.(2 - i)``, fine to coarse;
- ``decoder.inst_branch.inst_convs.2k`` (a Sequential with a ReLU after each conv) ->
  ``decoder.instance_branch.convs.k``; ``decoder.inst_branch.fc`` (G-IAM) ->
  ``decoder.instance_branch.fuse``; the other ``inst_branch`` layers keep their names;
- ``decoder.mask_branch.mask_convs.2k`` -> ``decoder.mask_branch.convs.k``;
- ``backbone.*`` (detectron2's ResNet), ``encoder.ppm.*``, ``encoder.fusion.*`` and
  ``decoder.mask_branch.projection.*`` are the same.
- ``decoder.inst_branch.softmax_bias`` (the G-IAM softmax variant) is dropped: one scalar added
  to every logit of a softmax changes nothing.

Without this, detectron2's non-strict loading takes an official ``.pth`` with a warning and
leaves 36 (IAM) or 38 (G-IAM) tensors at their random init. Any key the rules cannot place is
an error. Reads a local file (the official ``model_final.pth`` from the SparseInst README, or
any ``{"model": state_dict}``), writes ``{"model": {name: tensor}}``.

Usage::

    python baselines/detectron2/tools/convert_official_sparseinst.py \\
        sparse_inst_r50_giam_aug_2b7d68.pth pretrained/sparseinst_r50_giam_d2.pth

It prints the decoder settings the checkpoint needs: a G-IAM checkpoint (``fc`` present) needs
``MODEL.SPARSE_INST.DECODER.GROUPS 4`` (configs/coco/sparseinst_R_50.yaml), an IAM one
``GROUPS 1`` (sparseinst_R_50_iam.yaml), a softmax one ``DECODER.IAM_ACTIVATION softmax``.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Dict, List, Tuple

import torch

from analysis.checkpoint_io import (ConversionError, RenameRule, load_state_dict,
                                    rename_state_dict, save_checkpoint)

#: The encoder's number of pyramid levels (C3-C5), whose index order the two codes reverse.
NUM_LEVELS = 3


def _reversed_level(name: str):
    def rename(match: re.Match) -> str:
        level = int(match.group(1))
        if level >= NUM_LEVELS:
            raise ConversionError(f"{match.group(0)}: SparseInst's encoder has {NUM_LEVELS} "
                                  f"levels, not {level + 1}")
        return f"encoder.{name}.{NUM_LEVELS - 1 - level}.{match.group(2)}"
    return rename


def _conv_of_relu_stack(prefix: str):
    # The official stacks interleave ReLUs (no parameters): conv k sits at index 2k.
    def rename(match: re.Match) -> str:
        index = int(match.group(1))
        if index % 2:
            raise ConversionError(f"{match.group(0)}: odd index, but the official conv stacks "
                                  "hold a conv at every even index only")
        return f"{prefix}.{index // 2}.{match.group(2)}"
    return rename


#: Official name (full match) -> project name.
RULES: List[RenameRule] = [
    (r"backbone\.(?:stem|res[2-5])\..+", r"\g<0>"),
    (r"encoder\.fpn_laterals\.(\d+)\.(weight|bias)", _reversed_level("lateral_convs")),
    (r"encoder\.fpn_outputs\.(\d+)\.(weight|bias)", _reversed_level("output_convs")),
    (r"encoder\.(?:ppm|fusion)\..+", r"\g<0>"),
    (r"decoder\.inst_branch\.inst_convs\.(\d+)\.(weight|bias)",
     _conv_of_relu_stack("decoder.instance_branch.convs")),
    (r"decoder\.inst_branch\.fc\.(weight|bias)", r"decoder.instance_branch.fuse.\1"),
    (r"decoder\.inst_branch\.(iam_conv|cls_score|mask_kernel|objectness)\.(weight|bias)",
     r"decoder.instance_branch.\1.\2"),
    (r"decoder\.inst_branch\.softmax_bias", None),
    (r"decoder\.mask_branch\.mask_convs\.(\d+)\.(weight|bias)",
     _conv_of_relu_stack("decoder.mask_branch.convs")),
    (r"decoder\.mask_branch\.projection\.(weight|bias)", r"\g<0>"),
]


def decoder_settings(state: Dict[str, torch.Tensor]) -> Dict[str, object]:
    """The ``MODEL.SPARSE_INST.DECODER`` values an official state dict needs.

    Returns:
        ``{"GROUPS": G, "IAM_ACTIVATION": "sigmoid" | "softmax"}``; G from the width of ``fc``
        (G-IAM) over the instance branch's width, 1 without ``fc`` (IAM).

    Raises:
        ConversionError: no ``decoder.inst_branch.iam_conv.weight`` (not a SparseInst state dict).
    """
    iam = state.get("decoder.inst_branch.iam_conv.weight")
    if iam is None:
        raise ConversionError("no decoder.inst_branch.iam_conv.weight: not a SparseInst checkpoint")
    fc = state.get("decoder.inst_branch.fc.weight")
    # iam_conv is grouped: [N * G, dim / G, 3, 3], and fc is [dim * G, dim * G].
    groups = 1 if fc is None else round((fc.shape[1] / iam.shape[1]) ** 0.5)
    softmax = "decoder.inst_branch.softmax_bias" in state
    return {"GROUPS": groups, "IAM_ACTIVATION": "softmax" if softmax else "sigmoid"}


def convert(state: Dict[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], Dict[str, object]]:
    """Rename an official SparseInst state dict for this project's ``SparseInst``.

    Args:
        state: the official model's ``state_dict()`` (``backbone.*``, ``encoder.*``,
            ``decoder.*``), any float dtype.

    Returns:
        (the renamed state dict, loadable with ``strict=True`` into a model built with the
        settings of :func:`decoder_settings`; those settings).

    Raises:
        ConversionError: a key the rules cannot place (e.g. a backbone other than detectron2's
            ResNet), or not a SparseInst state dict.
    """
    settings = decoder_settings(state)
    return rename_state_dict(state, RULES, "SparseInst (hustvl/SparseInst, ResNet backbone)"), settings


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="official SparseInst checkpoint (.pth)")
    parser.add_argument("output", help="detectron2 checkpoint to write (.pth)")
    args = parser.parse_args(argv)
    try:
        model, settings = convert(load_state_dict(args.source))
    except ConversionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    save_checkpoint({"model": model, "__author__": "hustvl/SparseInst, converted by "
                                                   "convert_official_sparseinst.py"}, args.output)
    print(f"wrote {len(model)} tensors to {args.output}; needs "
          + " ".join(f"MODEL.SPARSE_INST.DECODER.{k} {v}" for k, v in settings.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
