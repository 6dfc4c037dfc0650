"""Tests of dcl_core.sample_pixels: the sampling rules of paper Sec. 4.2 / the authors' code."""

import pytest
import torch

from dcl_core import SampledPixels, sample_pixels


def _mask_with_count(h, w, count, seed):
    """bool [H, W] mask with exactly `count` foreground pixels at random positions."""
    g = torch.Generator().manual_seed(seed)
    flat = torch.zeros(h * w, dtype=torch.bool)
    flat[torch.randperm(h * w, generator=g)[:count]] = True
    return flat.view(h, w)


def _random_masks(r, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    masks = torch.rand(r, h, w, generator=g) < torch.rand(r, 1, 1, generator=g)
    masks[0] = False  # empty: invalid
    masks[1] = True  # full: invalid
    return masks


def test_shapes_dtypes_and_named_fields():
    masks = _random_masks(6, 7, 9, seed=0)
    out = sample_pixels(masks, 5, torch.Generator().manual_seed(1))
    assert isinstance(out, SampledPixels)
    for name in ("anchor", "positive", "negative"):
        idx = getattr(out, name)
        assert idx.shape == (6, 5) and idx.dtype == torch.int64
    assert out.valid.shape == (6,) and out.valid.dtype == torch.bool


def test_indices_in_range_for_all_rois_including_invalid():
    masks = _random_masks(20, 6, 5, seed=2)
    out = sample_pixels(masks, 4, torch.Generator().manual_seed(3))
    for idx in (out.anchor, out.positive, out.negative):
        assert int(idx.min()) >= 0 and int(idx.max()) < 30
    assert not out.valid[0] and not out.valid[1]


def test_anchors_positives_on_mask_negatives_off_it():
    masks = _random_masks(50, 12, 10, seed=4)
    out = sample_pixels(masks, 16, torch.Generator().manual_seed(5))
    flat = masks.flatten(1)
    assert out.valid.sum() > 30  # the check below must see many valid RoIs
    v = out.valid
    assert flat.gather(1, out.anchor)[v].all()
    assert flat.gather(1, out.positive)[v].all()
    assert not flat.gather(1, out.negative)[v].any()


@pytest.mark.parametrize(
    "fg_count, expected",
    [(0, False), (5, False), (6, True), (58, True), (59, False), (64, False)],
)
def test_validity_boundaries_equal_sizes(fg_count, expected):
    # H*W = 64, K = 5: valid iff 5 < |fg| < 59 (both strict, as the authors' code).
    masks = _mask_with_count(8, 8, fg_count, seed=fg_count).unsqueeze(0)
    out = sample_pixels(masks, 5)
    assert bool(out.valid[0]) is expected


@pytest.mark.parametrize(
    "fg_count, expected",
    [(7, False), (8, True), (59, True), (60, False)],
)
def test_validity_boundaries_unequal_sizes(fg_count, expected):
    # A = 3, P = 7, N = 4 on 64 pixels: valid iff max(A, P) = 7 < |fg| and 4 < 64 - |fg|.
    masks = _mask_with_count(8, 8, fg_count, seed=fg_count).unsqueeze(0)
    out = sample_pixels(masks, 5, num_anchors=3, num_positives=7, num_negatives=4)
    assert out.anchor.shape == (1, 3)
    assert out.positive.shape == (1, 7)
    assert out.negative.shape == (1, 4)
    assert bool(out.valid[0]) is expected


def _chi_square(counts):
    expected = counts.sum() / counts.numel()
    return float(((counts - expected) ** 2 / expected).sum())


def test_uniform_over_foreground_and_background():
    # 10 fg pixels, 54 bg pixels. With 200k draws a chi-square statistic for a uniform
    # source has mean = dof (9 / 53) and sd = sqrt(2 dof); the bounds sit > 10 sd away, yet
    # a sampler favouring one pixel by only 5 % would exceed them (chi2 ~ 50 for fg).
    masks = _mask_with_count(8, 8, 10, seed=7).unsqueeze(0)
    flat = masks.flatten()
    out = sample_pixels(masks, 200_000, torch.Generator().manual_seed(8))
    for idx, on_mask, bound in (
        (out.anchor, flat, 9 + 10 * (2 * 9) ** 0.5),
        (out.positive, flat, 9 + 10 * (2 * 9) ** 0.5),
        (out.negative, ~flat, 53 + 10 * (2 * 53) ** 0.5),
    ):
        counts = torch.bincount(idx[0], minlength=64).double()
        assert counts[~on_mask].sum() == 0
        member_counts = counts[on_mask]
        assert (member_counts > 0).all()  # every member reachable
        assert _chi_square(member_counts) < bound


def test_first_and_last_members_reachable():
    # The extreme members (first / last set bit) are where off-by-one errors would show.
    masks = torch.zeros(1, 4, 4, dtype=torch.bool)
    masks[0, 0, 0] = masks[0, 3, 3] = masks[0, 1, 2] = True
    out = sample_pixels(masks, 3000, torch.Generator().manual_seed(9))
    assert set(out.anchor.unique().tolist()) == {0, 6, 15}
    assert set(out.negative.unique().tolist()) == set(range(16)) - {0, 6, 15}


def test_rows_are_sampled_from_their_own_mask():
    masks = torch.zeros(2, 3, 3, dtype=torch.bool)
    masks[0, 0] = True  # pixels 0, 1, 2
    masks[1, 2] = True  # pixels 6, 7, 8
    out = sample_pixels(masks, 500, torch.Generator().manual_seed(10))
    assert set(out.anchor[0].unique().tolist()) == {0, 1, 2}
    assert set(out.anchor[1].unique().tolist()) == {6, 7, 8}
    assert set(out.negative[1].unique().tolist()) == {0, 1, 2, 3, 4, 5}


def test_anchor_positive_negative_draws_are_independent():
    masks = _random_masks(8, 10, 10, seed=11)
    out = sample_pixels(masks, 8, torch.Generator().manual_seed(12))
    assert out.valid.sum() >= 4
    assert not torch.equal(out.anchor[out.valid], out.positive[out.valid])


def test_deterministic_with_generator():
    masks = _random_masks(10, 9, 9, seed=13)
    a = sample_pixels(masks, 8, torch.Generator().manual_seed(14))
    b = sample_pixels(masks, 8, torch.Generator().manual_seed(14))
    c = sample_pixels(masks, 8, torch.Generator().manual_seed(15))
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert not torch.equal(a.anchor, c.anchor)


def test_zero_rois():
    out = sample_pixels(torch.zeros(0, 5, 5, dtype=torch.bool), 4)
    assert out.anchor.shape == (0, 4) and out.negative.shape == (0, 4)
    assert out.valid.shape == (0,)


def test_rejects_non_bool_mask():
    with pytest.raises(TypeError, match="gt_masks.*bool.*torch.uint8"):
        sample_pixels(torch.ones(2, 4, 4, dtype=torch.uint8), 2)


@pytest.mark.parametrize("shape", [(4, 4), (1, 2, 4, 4), (2, 0, 4)])
def test_rejects_bad_mask_shape(shape):
    with pytest.raises(ValueError, match="gt_masks"):
        sample_pixels(torch.ones(shape, dtype=torch.bool), 2)


@pytest.mark.parametrize(
    "kwargs, exc, name",
    [
        ({"num_samples": 0}, ValueError, "num_samples"),
        ({"num_samples": 2.0}, TypeError, "num_samples"),
        ({"num_samples": True}, TypeError, "num_samples"),
        ({"num_samples": 2, "num_anchors": 0}, ValueError, "num_anchors"),
        ({"num_samples": 2, "num_positives": -1}, ValueError, "num_positives"),
        ({"num_samples": 2, "num_negatives": 1.5}, TypeError, "num_negatives"),
    ],
)
def test_rejects_bad_counts(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        sample_pixels(torch.ones(1, 4, 4, dtype=torch.bool), **kwargs)
