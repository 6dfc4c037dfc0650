"""ContrastMask's pixel-contrastive loss with its contrastive head (CVPR 2022, arXiv 2203.09775).

Framework-free PyTorch in the form of :class:`dcl_core.DenseContrastiveLoss`: a module built from
its settings (:class:`dcl_core.ContrastMaskSettings`) that takes a mask head's RoI features and
masks and returns a scalar. Facts about the official code (huiserwang/ContrastMask 45f0a4d) are
from shared/reference/contrastmask-cac.md, part A, whose file:line references are repeated here.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .contrastmask_keys import SampledKeys, contrastmask_key_sets, sample_key_sets
from .contrastmask_settings import ContrastMaskSettings
from .roi_inputs import check_roi_inputs, exact_zero
from .sampling import _check_count

__all__ = ["ContrastMaskLoss", "contrastmask_term", "nonlocal_enhance"]

_COS_EPS = 1e-8  # F.cosine_similarity's, which the official code calls


def nonlocal_enhance(x: torch.Tensor) -> torch.Tensor:
    """The parameter-free non-local block ``enhance_op`` (sample_utils.py:L8-19; reference A.2.5).

    ``A = softmax_q cos(x_p, x_q)`` over all pixel pairs of a RoI and ``Y = A X`` on the raw
    features. ContrastMask runs it on the contrastive encoder's output at training and test time
    and adds the result (resized, 1x1 conv) to the mask head's features.

    Args:
        x: floating ``[R, C, H, W]``.

    Returns:
        ``[R, C, H, W]``, same dtype.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() != 4:
        raise TypeError(f"x must be a floating torch.Tensor [R, C, H, W], got "
                        f"{getattr(x, 'dtype', type(x).__name__)} {tuple(getattr(x, 'shape', ()))}")
    r, c, h, w = x.shape
    flat = x.reshape(r, c, h * w)
    unit = F.normalize(flat, dim=1, eps=1e-12)
    affinity = torch.bmm(unit.transpose(1, 2), unit).softmax(dim=-1)  # [R, HW, HW]
    return torch.bmm(flat, affinity.transpose(1, 2)).reshape(r, c, h, w)


def contrastmask_term(
    similarity: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor,
    temperature: float,
    *,
    shared_query: bool = True,
    untempered_positive: bool = True,
) -> torch.Tensor:
    """One of the four InfoNCE terms, ``INFOloss`` (contrastive_head.py:L161-178; reference A.4).

    With s the similarity of the query to each key and tau the temperature::

        L = (1 / max(1, |P|)) sum_{i in P} -log( exp(s_i / tau)
                                                  / (exp(s_i / tau_p) + sum_{j in N} exp(s_j / tau)) )

    with ``tau_p = 1`` when ``untempered_positive`` (the code) and ``tau_p = tau`` otherwise.
    The negatives N are those of the whole batch with ``shared_query`` (the code pools the kept
    RoIs' keys), or those of the positive's own RoI otherwise; |P| counts every positive of the
    batch in both cases. Evaluated with ``logaddexp``/``logsumexp`` (the code takes the plain
    exponentials; the values agree, the similarities being cosines).

    Args:
        similarity: floating ``[R, P]``, the query-key similarity of every pixel of every RoI.
        positives, negatives: bool ``[R, P]``, the drawn positive and negative keys.
        temperature: tau > 0.
        shared_query, untempered_positive: see :class:`dcl_core.ContrastMaskSettings`.

    Returns:
        0-dim tensor, the similarity's dtype; exactly 0 without positives.
    """
    logits = similarity / temperature
    masked = logits.masked_fill(~negatives, float("-inf"))
    if shared_query:
        log_negatives = torch.logsumexp(masked.reshape(-1), dim=0)
    else:
        log_negatives = torch.logsumexp(masked, dim=1, keepdim=True)
    positive_term = similarity if untempered_positive else logits
    per_pixel = torch.logaddexp(positive_term, log_negatives) - logits
    # where(), not a product: an unused pixel's value cannot leak into the sum or its gradient.
    total = torch.where(positives, per_pixel, per_pixel.new_zeros(())).sum()
    return total / positives.sum().clamp_min(1).to(total.dtype)


class ContrastMaskLoss(nn.Module):
    """ContrastMask's contrastive head and loss, ``loss_contrastive`` (reference A.2.4, A.3, A.4).

    The module holds the paper's "CL head" (contrastive_head.py:L70-106), so it is usable alone on
    any mask head's RoI features:

    - encoder: ``num_encoder_convs`` x (3x3 conv C -> E + ReLU, no normalisation), E =
      ``embed_channels``;
    - projector, per pixel: ``num_projector_layers - 1`` x (1x1 conv + BN + ReLU), then a
      Linear(E, E) (``projector.<n>`` in the state_dict); embeddings are not L2-normalised
      (the loss uses cosines).

    Per call (reference A.3-A.4): the features (detached when ``detach_features``, as the code
    does) go through the encoder and projector; :func:`dcl_core.contrastmask_keys.
    contrastmask_key_sets` builds each RoI's query regions and easy/hard key sets from the prior
    masks (edges, CAM thresholds for novel RoIs); :func:`~dcl_core.contrastmask_keys.
    sample_key_sets` drops RoIs with a key set under ``min_pixels`` pixels and draws
    ``ceil(sigma x |set|)`` keys of each set without replacement, on the device; the queries are
    the mean embedding over each kept RoI's foreground / background region, then (with
    ``shared_query``) the mean over the kept RoIs; each key's similarity to the query is
    ``cos(q, k - q)`` (``shift_keys``) or ``cos(q, k)``. The loss is

    ``loss_weight x w(e) x [L(q_fg, E+, E-, tau_e) + L(q_fg, H+, H-, tau_h)
    + L(q_bg, E-, E+, tau_e) + L(q_bg, H-, H+, tau_h)]``

    with L :func:`contrastmask_term` and w(e) the epoch ramp (:meth:`set_epoch`; the module starts
    at w(0) = 0.25 by default, as the official hook sets it before the first epoch). Nothing is
    read back to the host, so a CUDA device is not synchronised.

    The code's behaviour is the default, quirks included (the tau-less positive term, the
    query-shifted keys, one query shared by the batch, the inner edge ring as easy positives);
    each is a setting whose False is the paper-described variant. Not reproduced: the code's
    fallback when no RoI is kept (2 pixels per set, which it admits can crash): the loss is then
    exactly 0.

    Attributes:
        last_num_rois: int, RoIs passed in the last call.
        last_num_valid: int64 0-dim tensor on the features' device, the kept RoIs among those.
        epoch_weight: float, the current w(e).

    Raises:
        TypeError / ValueError: from the constructor, a bad channel count or settings.
    """

    def __init__(self, channels: int, settings: ContrastMaskSettings = ContrastMaskSettings()):
        super().__init__()
        if not isinstance(settings, ContrastMaskSettings):
            raise TypeError(f"settings must be ContrastMaskSettings, got {type(settings).__name__}")
        self.channels = _check_count("channels", channels)
        self.settings = settings
        e = settings.embed_channels
        encoder: list[nn.Module] = []
        for i in range(settings.num_encoder_convs):
            encoder += [nn.Conv2d(channels if i == 0 else e, e, 3, padding=1), nn.ReLU()]
        self.encoder = nn.Sequential(*encoder)
        width = e if settings.num_encoder_convs else channels
        projector: list[nn.Module] = []
        for _ in range(settings.num_projector_layers - 1):
            # mmcv's ConvModule drops the conv bias before a norm layer.
            projector.append(nn.Sequential(nn.Conv2d(width, e, 1, bias=False),
                                           nn.BatchNorm2d(e), nn.ReLU()))
            width = e
        projector.append(nn.Linear(width, e))
        self.projector = nn.ModuleList(projector)
        self.epoch_weight = settings.epoch_weight(0)
        self.last_num_rois: int = 0
        self.last_num_valid: torch.Tensor = torch.zeros((), dtype=torch.int64)

    @classmethod
    def from_settings(cls, settings: ContrastMaskSettings, channels: int) -> "ContrastMaskLoss":
        """The module for ``channels``-channel RoI features with ``settings``.

        Raises:
            TypeError: ``settings`` is not a :class:`dcl_core.ContrastMaskSettings`.
        """
        return cls(channels, settings)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, {self.settings.variant_name()}"

    def set_epoch(self, epoch: int) -> None:
        """Set w(e) for the 0-based epoch ``epoch`` (call before each epoch, as the official
        logger hook does)."""
        self.epoch_weight = self.settings.epoch_weight(epoch)

    def encode(self, features: torch.Tensor) -> torch.Tensor:
        """The encoder's output ``[R, E, H, W]`` (the input of :func:`nonlocal_enhance`), from
        ``[R, C, H, W]`` features, detached first when ``detach_features``."""
        if self.settings.detach_features:
            features = features.detach()
        return self.encoder(features.to(self.projector[-1].weight.dtype))

    def embed(self, encoded: torch.Tensor) -> torch.Tensor:
        """Per-pixel embeddings ``[R, H*W, E]`` (row-major pixels) of the encoder's output."""
        x = encoded
        for layer in self.projector[:-1]:
            x = layer(x)
        r, e = x.shape[:2]
        return self.projector[-1](x.reshape(r, e, -1).transpose(1, 2))

    def forward(
        self,
        features: torch.Tensor,
        gt_masks: torch.Tensor,
        mask_logits: Optional[torch.Tensor] = None,
        *,
        cam: Optional[torch.Tensor] = None,
        is_novel: Optional[torch.Tensor] = None,
        generator: Optional[torch.Generator] = None,
    ) -> torch.Tensor:
        """``loss_contrastive`` of the RoIs (see the class docstring).

        Args:
            features: floating ``[R, C, H, W]`` RoI features (official: 256 x 28 x 28 from a
                second RoIAlign; on another mask head, the tensor its predictor sees). R may be 0.
            gt_masks: bool ``[R, H, W]``, the prior masks: ground-truth mask targets of the RoIs
                at the features' resolution (for novel RoIs only their shape is used).
            mask_logits: optional floating ``[R, H, W]``; checked and ignored (the project's
                common forward contract).
            cam: optional floating ``[R, H, W]`` class activation maps of the RoIs' classes (any
                range; min-max normalised per RoI here, detached); required with ``is_novel``.
            is_novel: optional bool ``[R]``; a novel RoI's queries and keys come from its CAM
                (``cam > 1 - t``, ``cam < t``). None: every RoI is a base RoI.
            generator: optional ``torch.Generator`` on the features' device for the key draws.

        Returns:
            0-dim float tensor (float32 for half inputs, computed in the projector's dtype);
            exactly 0, with a ``grad_fn`` reaching every parameter, when no RoI is kept.

        Raises:
            TypeError: features (mask_logits, cam) not floating, gt_masks (is_novel) not bool.
            ValueError: shapes not ``[R, C, H, W]`` / ``[R, H, W]`` / ``[R]``, C != ``channels``,
                H or W < 2, tensors (or the generator) on different devices, or ``is_novel``
                without ``cam``.
        """
        return self.loss_and_encoded(features, gt_masks, mask_logits, cam=cam,
                                     is_novel=is_novel, generator=generator)[0]

    def loss_and_encoded(
        self,
        features: torch.Tensor,
        gt_masks: torch.Tensor,
        mask_logits: Optional[torch.Tensor] = None,
        *,
        cam: Optional[torch.Tensor] = None,
        is_novel: Optional[torch.Tensor] = None,
        generator: Optional[torch.Generator] = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward`'s loss and the encoder's output ``[R, E, H, W]``, for a model that
        also feeds :func:`nonlocal_enhance` of it to its mask head (the full ContrastMask)."""
        check_roi_inputs(features, gt_masks, self.channels, mask_logits, generator)
        if features.shape[-1] < 2 or features.shape[-2] < 2:
            raise ValueError(f"features {tuple(features.shape)}: H and W must be >= 2 (edges)")
        if cam is not None and cam.device != features.device:
            raise ValueError(f"cam is on {cam.device} but features are on {features.device}")
        s = self.settings
        r = features.shape[0]
        self.last_num_rois = r
        encoded = self.encode(features)
        if r == 0:
            # BN cannot normalise an empty batch: an exact 0 that still uses every parameter.
            self.last_num_valid = torch.zeros((), dtype=torch.int64, device=features.device)
            return exact_zero(encoded, self), encoded
        embeddings = self.embed(encoded)  # [R, HW, E]
        sets = contrastmask_key_sets(gt_masks, cam, is_novel, cam_threshold=s.cam_threshold,
                                     inner_edge_easy=s.inner_edge_easy)
        sampled = sample_key_sets(sets, s.sample_ratio, s.min_pixels, generator)
        self.last_num_valid = sampled.keep.sum().detach()
        loss = self._loss(embeddings, sets.query_fg, sets.query_bg, sampled)
        return loss * (s.loss_weight * self.epoch_weight), encoded

    def _loss(self, embeddings: torch.Tensor, query_fg: torch.Tensor, query_bg: torch.Tensor,
              sampled: SampledKeys) -> torch.Tensor:
        """The bracket of the four terms, for ``[R, P, E]`` embeddings, ``[R, H, W]`` regions."""
        s = self.settings
        r, p, _ = embeddings.shape
        keep = sampled.keep

        def query(region: torch.Tensor) -> torch.Tensor:
            weights = region.reshape(r, p).to(embeddings.dtype)
            per_roi = torch.bmm(weights.unsqueeze(1), embeddings).squeeze(1)
            per_roi = per_roi / weights.sum(1, keepdim=True).clamp_min(1)  # [R, E]
            if not s.shared_query:
                return per_roi
            kept = keep.to(embeddings.dtype).unsqueeze(1)
            shared = (per_roi * kept).sum(0) / kept.sum().clamp_min(1)
            return shared.expand(r, -1)

        def similarity(q: torch.Tensor) -> torch.Tensor:
            # F.cosine_similarity's value (each norm clamped at 1e-8) with the dot product as a
            # batched matrix product: cosine_similarity's backward over [R, P, E] dominated the
            # step on a CPU. q . (k - q) = q . k - |q|^2.
            dot = torch.bmm(embeddings, q.unsqueeze(2)).squeeze(2)  # [R, P]
            q_norm = torch.linalg.vector_norm(q, dim=1, keepdim=True)  # [R, 1]
            if s.shift_keys:
                dot = dot - q_norm.square()
                k_norm = torch.linalg.vector_norm(embeddings - q.unsqueeze(1), dim=2)
            else:
                k_norm = torch.linalg.vector_norm(embeddings, dim=2)
            return dot / (q_norm.clamp_min(_COS_EPS) * k_norm.clamp_min(_COS_EPS))

        sim_fg, sim_bg = similarity(query(query_fg)), similarity(query(query_bg))
        easy_pos, easy_neg, hard_pos, hard_neg = (
            x.reshape(r, p) for x in (sampled.easy_pos, sampled.easy_neg,
                                      sampled.hard_pos, sampled.hard_neg))
        options = dict(shared_query=s.shared_query, untempered_positive=s.untempered_positive)
        return (contrastmask_term(sim_fg, easy_pos, easy_neg, s.easy_temperature, **options)
                + contrastmask_term(sim_fg, hard_pos, hard_neg, s.hard_temperature, **options)
                + contrastmask_term(sim_bg, easy_neg, easy_pos, s.easy_temperature, **options)
                + contrastmask_term(sim_bg, hard_neg, hard_pos, s.hard_temperature, **options))
