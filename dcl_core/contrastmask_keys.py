"""ContrastMask's query regions and easy/hard key sets, and their sampling (reference A.3).

The official code builds these per RoI on the CPU with a Python loop (``get_query_keys`` in
sample_utils.py, vlkit's ``seg2edge``, scipy's ``distance_transform_edt``, ``random.sample``).
Here everything is a batched tensor operation on the masks' device that reads nothing back to the
host:

- edges: ``torch.gradient`` (edge order 1, like ``np.gradient``), an edge where either gradient
  is non-zero: a 2-pixel band straddling the boundary, one ring inside the mask, one outside;
- the band D (pixels at Euclidean distance < 2 from an edge): a 3x3 max-pool dilation of the
  edges, identical to the distance transform whenever an edge exists (a RoI without edges has
  empty hard sets and is dropped by the < ``min_pixels`` rule in both);
- sampling: ``ceil(sigma x |set|)`` pixels uniformly without replacement per RoI and set, as the
  members with the highest i.i.d. uniform scores (per-RoI top-k): the distribution of
  ``random.sample``, a different random stream.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F

__all__ = ["ContrastMaskKeySets", "SampledKeys", "contrastmask_key_sets", "mask_edges",
           "normalize_cam", "sample_counts", "sample_key_sets", "sample_without_replacement"]


class ContrastMaskKeySets(NamedTuple):
    """Per-RoI pixel sets, each bool ``[R, H, W]`` (reference A.3).

    Attributes:
        query_fg, query_bg: the regions averaged into the foreground / background query.
        easy_pos, easy_neg, hard_pos, hard_neg: the key sets E+, E-, H+, H-.
    """

    query_fg: torch.Tensor
    query_bg: torch.Tensor
    easy_pos: torch.Tensor
    easy_neg: torch.Tensor
    hard_pos: torch.Tensor
    hard_neg: torch.Tensor


class SampledKeys(NamedTuple):
    """The drawn keys (:func:`sample_key_sets`).

    Attributes:
        keep: bool ``[R]``, False for a RoI dropped because one of its key sets has fewer than
            ``min_pixels`` pixels.
        easy_pos, easy_neg, hard_pos, hard_neg: bool ``[R, H, W]``, the drawn pixels of each set;
            all False on dropped RoIs.
    """

    keep: torch.Tensor
    easy_pos: torch.Tensor
    easy_neg: torch.Tensor
    hard_pos: torch.Tensor
    hard_neg: torch.Tensor


def _check_masks(name: str, masks: torch.Tensor) -> None:
    if not isinstance(masks, torch.Tensor) or masks.dtype != torch.bool:
        kind = masks.dtype if isinstance(masks, torch.Tensor) else type(masks).__name__
        raise TypeError(f"{name} must be a bool torch.Tensor [R, H, W], got {kind}")
    if masks.dim() != 3 or masks.shape[1] < 2 or masks.shape[2] < 2:
        raise ValueError(f"{name} must be [R, H, W] with H, W >= 2, got {tuple(masks.shape)}")


def mask_edges(masks: torch.Tensor) -> torch.Tensor:
    """The pixels where the mask's gradient is non-zero (vlkit ``seg2edge`` as the official code
    calls it, roi_head.py:L156): bool ``[R, H, W]`` from bool ``[R, H, W]`` masks, H, W >= 2.

    ``torch.gradient`` uses central differences inside and one-sided ones on the border, like
    ``np.gradient``, so a boundary gives a 2-pixel band, one ring on each side.

    Raises:
        TypeError / ValueError: masks not bool or not ``[R, H, W]`` with H, W >= 2.
    """
    _check_masks("masks", masks)
    if masks.shape[0] == 0:
        return masks.clone()
    grad_y, grad_x = torch.gradient(masks.float(), dim=(1, 2))
    return (grad_y != 0) | (grad_x != 0)


def normalize_cam(cam: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each RoI's CAM to [0, 1] (sample_utils.py ``normalize_zero_to_one``).

    Args:
        cam: floating ``[R, H, W]`` class activation maps.

    Returns:
        float ``[R, H, W]`` in [0, 1]. A constant CAM (which makes the official code divide 0 by
        0) gives all zeros: no pixel passes the foreground threshold.
    """
    r = cam.shape[0]
    flat = cam.reshape(r, -1)
    low = flat.amin(dim=1, keepdim=True)
    span = flat.amax(dim=1, keepdim=True) - low
    out = torch.where(span > 0, (flat - low) / span.clamp_min(torch.finfo(flat.dtype).tiny),
                      torch.zeros_like(flat))
    return out.reshape(cam.shape)


def contrastmask_key_sets(
    masks: torch.Tensor,
    cam: Optional[torch.Tensor] = None,
    is_novel: Optional[torch.Tensor] = None,
    *,
    cam_threshold: float = 0.1,
    inner_edge_easy: bool = True,
) -> ContrastMaskKeySets:
    """Query regions and key sets of every RoI (sample_utils.py ``get_query_keys``, L52-117).

    Base RoI (``is_novel`` False), with E = :func:`mask_edges` of the mask, D = E dilated by a
    3x3 square (distance < 2), B = D \\ E:
    ``query_fg = mask``, ``query_bg = ~mask``; ``hard_neg = B \\ mask``, ``hard_pos = B & mask``,
    ``easy_pos = mask \\ B`` (so the inner edge ring is an easy positive and the outer ring in no
    set), ``easy_neg = ~(mask | D)``. With ``inner_edge_easy=False``, B = D: both rings are hard
    keys (the reading of the paper's "hard keys near the boundary").

    Novel RoI (needs ``cam``): with c the min-max normalised CAM and t = ``cam_threshold``,
    ``query_fg = easy_pos = hard_pos = c > 1 - t`` and ``query_bg = easy_neg = hard_neg = c < t``
    (the novel classes' pseudo masks; ``scale_u = 1`` as in the code).

    The code replaces a base query region with fewer than 2 pixels by ``c > 0.95`` / ``c < 0.05``;
    such a RoI has fewer than 2 easy positives (or negatives) and is always dropped by the
    ``min_pixels`` rule (>= 2), so its query is never used and the fallback is not reproduced.

    Args:
        masks: bool ``[R, H, W]`` prior masks (ground-truth mask targets), H, W >= 2.
        cam: optional floating ``[R, H, W]`` CAMs (any range; normalised here); required when
            any RoI is novel.
        is_novel: optional bool ``[R]``; None means every RoI is a base RoI.
        cam_threshold: t in (0, 0.5).
        inner_edge_easy: the code's sets (True) or both edge rings as hard keys (False).

    Returns:
        :class:`ContrastMaskKeySets`, bool ``[R, H, W]`` each, on ``masks.device``.

    Raises:
        TypeError / ValueError: a tensor of the wrong dtype or shape, or novel RoIs without a CAM.
    """
    _check_masks("masks", masks)
    r, h, w = masks.shape
    edges = mask_edges(masks)
    band = F.max_pool2d(edges.unsqueeze(1).float(), 3, stride=1, padding=1).squeeze(1) > 0
    hard = band & ~edges if inner_edge_easy else band
    sets = ContrastMaskKeySets(
        query_fg=masks, query_bg=~masks,
        easy_pos=masks & ~hard, easy_neg=~(masks | band),
        hard_pos=hard & masks, hard_neg=hard & ~masks)
    if is_novel is None:
        return sets
    if not isinstance(is_novel, torch.Tensor) or is_novel.dtype != torch.bool \
            or tuple(is_novel.shape) != (r,):
        raise TypeError(f"is_novel must be a bool torch.Tensor [R] = [{r}], got "
                        f"{getattr(is_novel, 'dtype', type(is_novel).__name__)} "
                        f"{tuple(getattr(is_novel, 'shape', ()))}")
    if cam is None:
        raise ValueError("is_novel needs cam: a novel RoI's sets come from its CAM")
    if not isinstance(cam, torch.Tensor) or not cam.is_floating_point() \
            or tuple(cam.shape) != (r, h, w):
        raise TypeError(f"cam must be a floating torch.Tensor [R, H, W] = {(r, h, w)}, got "
                        f"{getattr(cam, 'dtype', type(cam).__name__)} "
                        f"{tuple(getattr(cam, 'shape', ()))}")
    c = normalize_cam(cam.detach())
    pseudo_fg, pseudo_bg = c > 1 - cam_threshold, c < cam_threshold
    novel = is_novel.view(r, 1, 1)
    return ContrastMaskKeySets(
        *(torch.where(novel, pseudo, base) for pseudo, base in zip(
            (pseudo_fg, pseudo_bg, pseudo_fg, pseudo_bg, pseudo_fg, pseudo_bg), sets)))


def sample_counts(set_sizes: torch.Tensor, sample_ratio: float) -> torch.Tensor:
    """``ceil(sigma x n)`` for set sizes n, computed in float32 like the official code (a Python
    float times its float32 set sizes): int64, same shape as ``set_sizes``. In float32,
    0.3 x 100 rounds up to 30.000002, so a 100-pixel set gives 31 keys."""
    return torch.ceil(set_sizes.to(torch.float32) * sample_ratio).to(torch.int64)


def sample_without_replacement(
    members: torch.Tensor, counts: torch.Tensor, generator: Optional[torch.Generator] = None
) -> torch.Tensor:
    """Per row, ``counts[i]`` members drawn uniformly without replacement.

    The members with the ``counts[i]`` highest i.i.d. uniform scores: every subset of that size
    is equally likely, as with ``random.sample``. Exact ranks (a scatter of the sort order) keep
    the count exact even if two scores tie.

    Args:
        members: bool ``[..., N]``, the set in each row.
        counts: int64 ``[...]``, at most the row's set size.
        generator: optional ``torch.Generator`` on ``members.device``.

    Returns:
        bool ``[..., N]``, the drawn pixels (a subset of ``members``).
    """
    scores = torch.rand(members.shape, generator=generator, device=members.device)
    scores = scores.masked_fill(~members, -1.0)
    order = scores.argsort(dim=-1, descending=True)
    ranks = torch.empty_like(order).scatter_(
        -1, order, torch.arange(members.shape[-1], device=members.device).expand_as(order))
    return members & (ranks < counts.unsqueeze(-1))


def sample_key_sets(
    sets: ContrastMaskKeySets,
    sample_ratio: float = 0.3,
    min_pixels: int = 5,
    generator: Optional[torch.Generator] = None,
) -> SampledKeys:
    """Drop RoIs with a small key set and draw the keys of the others (sample_utils.py
    L124-154, ``get_pixel_sets_N``).

    A RoI is kept iff each of E+, E-, H+, H- has at least ``min_pixels`` pixels; from each set of
    a kept RoI, ``ceil(sample_ratio x |set|)`` pixels are drawn uniformly without replacement
    (:func:`sample_without_replacement`), all four sets in one batched draw. When no RoI is kept
    the code falls back to 2 pixels per set (and "would still raise an error", sample_utils.py
    L133-140); here nothing is drawn and the loss is 0.

    Args:
        sets: :func:`contrastmask_key_sets`' output, bool ``[R, H, W]`` each.
        sample_ratio: sigma in (0, 1].
        min_pixels: the drop threshold.
        generator: optional ``torch.Generator`` on the masks' device.

    Returns:
        :class:`SampledKeys` on the masks' device.
    """
    keys = torch.stack([sets.easy_pos, sets.easy_neg, sets.hard_pos, sets.hard_neg])
    s, r, h, w = keys.shape
    keys = keys.reshape(s, r, h * w)
    sizes = keys.sum(dim=2)  # [4, R]
    keep = (sizes >= min_pixels).all(dim=0)
    counts = torch.where(keep, sample_counts(sizes, sample_ratio), torch.zeros_like(sizes))
    drawn = sample_without_replacement(keys, counts, generator).reshape(s, r, h, w)
    return SampledKeys(keep, *drawn.unbind(0))
