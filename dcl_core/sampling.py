"""Pixel sampling for the dense contrastive loss (paper Sec. 4.2, "Sampling Strategy").

For every RoI, anchors and positives are drawn from the RoI's ground-truth mask (foreground)
and negatives from every other pixel of the RoI, each as an independent uniform draw WITH
replacement, as the authors' code does. The draws are vectorised over RoIs and never read
a value back to the host, so the function does not synchronise a CUDA device.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple, Optional

import torch

__all__ = ["InfeasibleSamplingError", "SampledPixels", "check_counts_fit", "sample_pixels"]


class SampledPixels(NamedTuple):
    """Flat pixel indices drawn by :func:`sample_pixels`.

    Attributes:
        anchor: int64 ``[R, A]`` indices into the flattened ``H*W`` RoI map (row-major).
        positive: int64 ``[R, P]`` indices, same convention.
        negative: int64 ``[R, N]`` indices, same convention.
        valid: bool ``[R]``; True iff the RoI can take part in the loss (see
            :func:`sample_pixels`). Indices of invalid RoIs are in range but meaningless.
    """

    anchor: torch.Tensor
    positive: torch.Tensor
    negative: torch.Tensor
    valid: torch.Tensor


class InfeasibleSamplingError(ValueError):
    """No RoI at the configured mask resolution can satisfy the validity rule for these counts
    (raised by :func:`check_counts_fit`; a configuration error, worth one line)."""


def check_counts_fit(num_anchors: int, num_positives: int, num_negatives: int,
                     height: int, width: int) -> None:
    """Refuse sample counts that make every ``height x width`` RoI invalid.

    A RoI is valid iff ``max(A, P) < |fg| and N < H*W - |fg|`` (:func:`sample_pixels`); some
    integer ``|fg|`` satisfies both iff ``max(A, P) + N + 2 <= H*W``. With ``A = P = N = K``
    that is ``K <= (H*W - 2) / 2``, 391 at 28 x 28. Beyond it the loss is 0 at every
    iteration and a run named DCL silently trains the baseline, so adapters call this once
    when they build the loss.

    Args:
        num_anchors, num_positives, num_negatives: A, P, N (each K unless overridden).
        height, width: the RoI feature (and target mask) resolution the loss will see.

    Raises:
        InfeasibleSamplingError: naming the counts, the resolution and the largest counts
            that fit.
    """
    a, p, n = (_check_count(k, v) for k, v in (("num_anchors", num_anchors),
                                                ("num_positives", num_positives),
                                                ("num_negatives", num_negatives)))
    hw = _check_count("height", height) * _check_count("width", width)
    if max(a, p) + n + 2 <= hw:
        return
    counts = f"K={a}" if a == p == n else f"|A|={a}, |P|={p}, |N|={n}"
    raise InfeasibleSamplingError(
        f"{counts} leaves no valid RoI at {height}x{width}: a RoI needs max(|A|, |P|) < |fg| < "
        f"H*W - |N|, so max(|A|, |P|) + |N| must be <= {hw - 2} (K <= {(hw - 2) // 2})")


def _check_count(name: str, value) -> int:
    # bool is an int subclass; True as a sample count is almost surely a mistake.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _draw_from_set(
    cumsum: torch.Tensor, count: torch.Tensor, k: int, generator: Optional[torch.Generator]
) -> torch.Tensor:
    """Draw ``k`` flat indices per row uniformly, with replacement, from the set whose
    indicator's running count is ``cumsum`` (``[R, HW]`` int64) and size ``count`` (``[R]``).

    The j-th member (0-based) of a set is the first position where the running count reaches
    j + 1, so uniform j in [0, count) gives a uniform member. Rows with an empty set get the
    in-range index HW - 1.
    """
    r, hw = cumsum.shape
    # float64 keeps floor(u * count) unbiased for any realistic map size.
    u = torch.rand((r, k), generator=generator, device=cumsum.device, dtype=torch.float64)
    j = torch.floor(u * count.unsqueeze(1).to(torch.float64)).to(torch.int64)
    # u * count can round up to count itself; the clamp also maps empty sets to j = 0.
    j = torch.minimum(j, (count - 1).clamp_min(0).unsqueeze(1))
    idx = torch.searchsorted(cumsum, j + 1)
    # Empty sets make searchsorted return hw: keep the index gatherable.
    return idx.clamp_max(hw - 1)


def sample_pixels(
    gt_masks: torch.Tensor,
    num_samples: int,
    generator: Optional[torch.Generator] = None,
    *,
    num_anchors: Optional[int] = None,
    num_positives: Optional[int] = None,
    num_negatives: Optional[int] = None,
) -> SampledPixels:
    """Sample anchor, positive and negative pixels for every RoI.

    Follows paper Sec. 4.2 and the authors' code: per RoI, three independent uniform draws
    WITH replacement (an anchor may coincide with a positive): anchors and positives from the
    foreground of the RoI's ground-truth mask, negatives from all other pixels of the RoI
    (background and other instances). Nothing is drawn across RoIs.

    Validity (authors' code, strict inequalities; the paper's Eq. 4 writes ``>=``):
    ``valid[r] = max(A, P) < |fg_r|  and  N < H*W - |fg_r|``, which for the default
    ``A = P = N = K`` is ``K < |fg_r| < H*W - K``; :func:`check_counts_fit` says whether any
    RoI at ``H x W`` can be valid at all. Invalid RoIs still get in-range indices
    (so gathering never fails); callers must exclude them from the loss.

    Args:
        gt_masks: bool ``[R, H, W]`` ground-truth masks at the feature resolution (R may be 0).
            Other dtypes are rejected rather than thresholded, since the right threshold for
            soft or 0/255 masks is the caller's decision (e.g. ``masks >= 0.5``).
        num_samples: K, the number of anchors, positives and negatives per RoI (>= 1).
        generator: optional ``torch.Generator`` on ``gt_masks.device`` for reproducible draws.
        num_anchors, num_positives, num_negatives: optional A, P, N overriding K for that set
            (the paper's supplementary study of unequal set sizes).

    Returns:
        :class:`SampledPixels` ``(anchor [R, A], positive [R, P], negative [R, N], valid [R])``;
        indices are int64 in ``[0, H*W)``, row-major over ``(H, W)``, on ``gt_masks.device``.

    Raises:
        TypeError: ``gt_masks`` is not a bool tensor, or a count is not an int.
        ValueError: ``gt_masks`` is not 3-D, has an empty spatial size, a count is < 1, or
            ``generator`` lives on another device than ``gt_masks``.
    """
    if not isinstance(gt_masks, torch.Tensor):
        raise TypeError(f"gt_masks must be a torch.Tensor, got {type(gt_masks).__name__}")
    if gt_masks.dtype != torch.bool:
        raise TypeError(
            f"gt_masks must be a bool tensor [R, H, W], got dtype {gt_masks.dtype}; "
            "threshold it explicitly (e.g. masks >= 0.5)"
        )
    if gt_masks.dim() != 3:
        raise ValueError(f"gt_masks must be [R, H, W], got shape {tuple(gt_masks.shape)}")
    r, h, w = gt_masks.shape
    if h * w == 0:
        raise ValueError(f"gt_masks has no pixels: shape {tuple(gt_masks.shape)}")
    k = _check_count("num_samples", num_samples)
    n_a = k if num_anchors is None else _check_count("num_anchors", num_anchors)
    n_p = k if num_positives is None else _check_count("num_positives", num_positives)
    n_n = k if num_negatives is None else _check_count("num_negatives", num_negatives)
    if generator is not None and generator.device.type != gt_masks.device.type:
        raise ValueError(
            f"generator is on {generator.device} but gt_masks is on {gt_masks.device}"
        )

    fg = gt_masks.reshape(r, h * w)
    fg_cumsum = fg.cumsum(1)  # int64
    # The complement's running count, without a second cumsum pass.
    positions = torch.arange(1, h * w + 1, device=gt_masks.device, dtype=torch.int64)
    bg_cumsum = positions - fg_cumsum
    fg_count = fg_cumsum[:, -1]
    bg_count = h * w - fg_count

    anchor = _draw_from_set(fg_cumsum, fg_count, n_a, generator)
    positive = _draw_from_set(fg_cumsum, fg_count, n_p, generator)
    negative = _draw_from_set(bg_cumsum, bg_count, n_n, generator)
    valid = (fg_count > max(n_a, n_p)) & (bg_count > n_n)
    return SampledPixels(anchor, positive, negative, valid)
