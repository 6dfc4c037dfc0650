"""Per-RoI InfoNCE over sampled pixel embeddings (paper Eq. 3)."""

from __future__ import annotations

import math
import numbers

import torch

__all__ = ["info_nce", "l2_normalize", "PAIR_REDUCTIONS"]

PAIR_REDUCTIONS = ("mean", "sum", "none")


def l2_normalize(x: torch.Tensor, dim: int = -1, eps: float = 1e-12) -> torch.Tensor:
    """L2-normalise ``x`` along ``dim``, robust to huge magnitudes.

    ``torch.nn.functional.normalize`` squares the entries, so float32 vectors with entries
    above ~1e19 overflow to an infinite norm and come back as zeros. Dividing by the
    (detached) largest absolute entry first keeps the squares in range; since normalisation
    is scale invariant this changes neither the value nor the gradient.

    Args:
        x: floating tensor of any shape.
        dim: dimension to normalise over (the channel dimension C).
        eps: lower bound on the norm of the rescaled vector; all-zero vectors stay zero.

    Returns:
        Tensor of the shape and dtype of ``x`` with unit L2 norm along ``dim``.
    """
    scale = x.detach().abs().amax(dim=dim, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
    return torch.nn.functional.normalize(x / scale, dim=dim, eps=eps)


def info_nce(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    temperature: float,
    reduction: str = "mean",
) -> torch.Tensor:
    """InfoNCE of every (anchor, positive) pair of every RoI against that RoI's negatives.

    Paper Eq. 3, with the denominator the authors' code uses: for anchor u and positive v,
    ``loss(u, v) = -log( exp(s_uv/t) / (exp(s_uv/t) + sum_w exp(s_uw/t)) )`` where w runs over
    the RoI's negatives only (the other positives are not in the denominator) and
    ``s = cosine similarity`` (embeddings are L2-normalised over C here). Evaluated as
    ``logaddexp(a, logsumexp_w(b_w)) - a`` with ``a = s_uv/t``, ``b_w = s_uw/t``, which never
    forms ``exp`` of a large number (the authors subtract a detached max; same value).
    Half-precision inputs are computed in float32, and autocast is disabled inside.

    Args:
        anchor: floating ``[R, A, C]`` anchor embeddings (before normalisation).
        positive: floating ``[R, P, C]`` positive embeddings.
        negative: floating ``[R, N, C]`` negative embeddings; A, P, N >= 1, one dtype.
        temperature: tau > 0 (dimensionless; default in the paper 0.07).
        reduction: how the A x P pair losses of a RoI are combined:
            ``"mean"`` (authors' code), ``"sum"`` (paper Eq. 3) or ``"none"``.

    Returns:
        ``[R]`` per-RoI loss for ``"mean"``/``"sum"``, ``[R, A, P]`` for ``"none"``; dtype
        float32 for half/bfloat16 inputs, else the input dtype. R = 0 gives an empty tensor.

    Raises:
        TypeError: an input is not a floating tensor, the dtypes differ, or ``temperature``
            is not a real number.
        ValueError: shapes are not 3-D or disagree in R or C, A, P or N is 0, devices differ,
            ``temperature`` is not finite and > 0, or ``reduction`` is unknown.
    """
    tensors = {"anchor": anchor, "positive": positive, "negative": negative}
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            kind = t.dtype if isinstance(t, torch.Tensor) else type(t).__name__
            raise TypeError(f"{name} must be a floating torch.Tensor, got {kind}")
        if t.dim() != 3:
            raise ValueError(f"{name} must be [R, n, C], got shape {tuple(t.shape)}")
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len({s[0] for s in shapes.values()}) != 1 or len({s[2] for s in shapes.values()}) != 1:
        raise ValueError(f"anchor, positive, negative must agree in R and C, got {shapes}")
    empty = [name for name, s in shapes.items() if s[1] == 0]
    if empty:
        raise ValueError(f"{empty} must hold at least one sample per RoI, got {shapes}")
    if len({t.dtype for t in tensors.values()}) != 1:
        raise TypeError(
            "anchor, positive, negative must share one dtype, got "
            f"{ {name: str(t.dtype) for name, t in tensors.items()} }"
        )
    if len({t.device for t in tensors.values()}) != 1:
        raise ValueError(
            "anchor, positive, negative must be on one device, got "
            f"{ {name: str(t.device) for name, t in tensors.items()} }"
        )
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise TypeError(f"temperature must be a real number, got {type(temperature).__name__}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be finite and > 0, got {temperature}")
    if reduction not in PAIR_REDUCTIONS:
        raise ValueError(f"reduction must be one of {PAIR_REDUCTIONS}, got {reduction!r}")

    def prepare(x: torch.Tensor) -> torch.Tensor:
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        return l2_normalize(x, dim=-1)

    # Under autocast bmm would drop back to half precision; the similarities are tiny
    # matrices, so full precision costs little and keeps 1/tau-scaled logits accurate.
    with torch.autocast(device_type=anchor.device.type, enabled=False):
        a, p, n = prepare(anchor), prepare(positive), prepare(negative)
        inv_t = 1.0 / float(temperature)
        logit_ap = torch.bmm(a, p.transpose(1, 2)) * inv_t  # [R, A, P]
        logit_an = torch.bmm(a, n.transpose(1, 2)) * inv_t  # [R, A, N]
        log_neg = torch.logsumexp(logit_an, dim=2, keepdim=True)  # [R, A, 1]
        pair_loss = torch.logaddexp(logit_ap, log_neg) - logit_ap  # [R, A, P]
    if reduction == "mean":
        return pair_loss.mean(dim=(1, 2))
    if reduction == "sum":
        return pair_loss.sum(dim=(1, 2))
    return pair_loss
