#!/usr/bin/env python
"""Convert a checkpoint of the official RefineMask code (zhanggang001/RefineMask, mmdet 2.3) for
this project's mmdetection 3 model (``load_from`` / ``--cfg-options load_from=...``).

The detector around the mask head kept its names from mmdet 2 to 3 (``backbone.*``,
``neck.*``, ``rpn_head.*``, ``roi_head.bbox_head.*``). The mask head computes the same function
with 60 of its 70 tensors named differently (shared/reference/fidelity-sparseinst-refinemask.md,
Sec. 2.2); under ``roi_head.mask_head.``:

- ``semantic_convs.i.conv`` -> ``semantic_head.convs.i.conv``; ``semantic_logits`` ->
  ``semantic_head.logits``;
- ``stages.k.semantic_transform_in`` / ``_out`` -> ``stages.k.semantic_in`` / ``_out``;
  ``stages.k.fuse_conv.0`` -> ``stages.k.reduce``; ``stages.k.fuse_conv.1.dilation_conv_j.conv``
  -> ``stages.k.fusion.branches.(j - 1).conv``; ``stages.k.fuse_conv.1.merge_conv.conv`` ->
  ``stages.k.fusion.merge.conv``; ``stages.k.fuse_transform_out`` -> ``stages.k.expand``;
- ``final_instance_logits`` -> ``final_logits``; ``instance_convs.*`` and
  ``stages.k.instance_logits`` are the same.

The DCL authors' RefineMask patch (tinyalpha/DCL ``more_models/RefineMask``) keeps its
projection at ``roi_head.contrast_loss.proj_head.{0,2}``: here
``roi_head.mask_head.contrast_loss.projection.{0,2}`` (training only; it needs a config with
``loss_contrast`` on).

mmengine's ``load_from`` loads non-strictly, so without this an official checkpoint would leave
the mask head at its random init with only a warning. Any key the rules cannot place is an
error. Reads a local file (the official ``.pth``, ``{"state_dict": ..., "meta": ...}``), writes
``{"state_dict": {name: tensor}, "meta": {...}}``.

Usage::

    python baselines/mmdet/tools/convert_official_refinemask.py \\
        r50-refinemask-cityscapes.pth pretrained/refinemask_r50_cityscapes_mmdet3.pth
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Dict, List

import torch

from analysis.checkpoint_io import (ConversionError, RenameRule, load_state_dict,
                                    rename_state_dict, save_checkpoint)

_HEAD = r"roi_head\.mask_head\."
_PARAM = r"(weight|bias)"


def _branch(match: re.Match) -> str:
    # dilation_conv_1, _2, _3 -> branches.0, .1, .2
    stage, branch, param = match.group(1), int(match.group(2)), match.group(3)
    if branch < 1:
        raise ConversionError(f"{match.group(0)}: dilation branches count from 1")
    return f"roi_head.mask_head.stages.{stage}.fusion.branches.{branch - 1}.conv.{param}"


#: Official name (full match) -> project name.
RULES: List[RenameRule] = [
    # mmdet 2 -> 3 kept these names.
    (r"(?:backbone|neck|rpn_head|roi_head\.bbox_head)\..+", r"\g<0>"),
    (_HEAD + r"instance_convs\.(\d+)\.conv\." + _PARAM, r"\g<0>"),
    (_HEAD + r"semantic_convs\.(\d+)\.conv\." + _PARAM,
     r"roi_head.mask_head.semantic_head.convs.\1.conv.\2"),
    (_HEAD + r"semantic_logits\." + _PARAM, r"roi_head.mask_head.semantic_head.logits.\1"),
    (_HEAD + r"stages\.(\d+)\.semantic_transform_(in|out)\." + _PARAM,
     r"roi_head.mask_head.stages.\1.semantic_\2.\3"),
    (_HEAD + r"stages\.(\d+)\.instance_logits\." + _PARAM, r"\g<0>"),
    (_HEAD + r"stages\.(\d+)\.fuse_conv\.0\." + _PARAM, r"roi_head.mask_head.stages.\1.reduce.\2"),
    (_HEAD + r"stages\.(\d+)\.fuse_conv\.1\.dilation_conv_(\d+)\.conv\." + _PARAM, _branch),
    (_HEAD + r"stages\.(\d+)\.fuse_conv\.1\.merge_conv\.conv\." + _PARAM,
     r"roi_head.mask_head.stages.\1.fusion.merge.conv.\2"),
    (_HEAD + r"stages\.(\d+)\.fuse_transform_out\." + _PARAM,
     r"roi_head.mask_head.stages.\1.expand.\2"),
    (_HEAD + r"final_instance_logits\." + _PARAM, r"roi_head.mask_head.final_logits.\1"),
    # The DCL authors' patch.
    (r"roi_head\.contrast_loss\.proj_head\.([02])\." + _PARAM,
     r"roi_head.mask_head.contrast_loss.projection.\1.\2"),
]


def convert(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Rename an official RefineMask (mmdet 2.3) state dict for this project's model.

    Args:
        state: the official ``MaskRCNN`` + ``RefineRoIHead`` + ``RefineMaskHead`` state dict.

    Returns:
        The renamed state dict, loadable with ``strict=True`` into the model of the matching
        config (e.g. configs/cityscapes/refinemask_r50_fpn.py for the Cityscapes checkpoint).

    Raises:
        ConversionError: a key the rules cannot place (e.g. a head with norm layers or the
            ``SimpleRefineMaskHead`` variant), or no mask-head key at all.
    """
    if not any(k.startswith("roi_head.mask_head.") for k in state):
        raise ConversionError("no roi_head.mask_head.* key: not a RefineMask checkpoint")
    return rename_state_dict(state, RULES, "RefineMask (zhanggang001/RefineMask, RefineMaskHead)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="official RefineMask checkpoint (.pth)")
    parser.add_argument("output", help="mmdetection 3 checkpoint to write (.pth)")
    args = parser.parse_args(argv)
    try:
        state = convert(load_state_dict(args.source))
    except ConversionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    save_checkpoint({"state_dict": state,
                     "meta": {"converted_from": "zhanggang001/RefineMask (mmdet 2.3)",
                              "converter": "convert_official_refinemask.py"}}, args.output)
    print(f"wrote {len(state)} tensors to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
