"""Tests of dcl_core.info_nce and dcl_core.DenseContrastiveLoss against plainly written
references of paper Eq. 3-5 (per RoI, per pair loops)."""

import math

import pytest
import torch

from dcl_core import DenseContrastiveLoss, info_nce, l2_normalize, sample_pixels

# ---------------------------------------------------------------------------------------------
# Independent references, written the plain way (Python loops, no log-sum-exp tricks).
# ---------------------------------------------------------------------------------------------


def eq3_loop(anchor, positive, negative, tau, reduction):
    """Paper Eq. 3 for ONE RoI with Python floats: anchor [A, C], positive [P, C],
    negative [N, C] -> sum (or mean) over (u, v) of -log(e_uv / (e_uv + sum_w e_uw))."""

    def unit(x):
        n = math.sqrt(sum(float(t) ** 2 for t in x))
        return [float(t) / n for t in x]

    def dot(x, y):
        return sum(a * b for a, b in zip(x, y))

    anchors = [unit(x) for x in anchor]
    positives = [unit(x) for x in positive]
    negatives = [unit(x) for x in negative]
    total = 0.0
    for u in anchors:
        neg_sum = sum(math.exp(dot(u, w) / tau) for w in negatives)
        for v in positives:
            e_uv = math.exp(dot(u, v) / tau)
            total += -math.log(e_uv / (e_uv + neg_sum))
    if reduction == "mean":
        total /= len(anchors) * len(positives)
    return total


def module_reference(module, features, masks, generator_seed, roi_reduction="mean",
                     pair_reduction="mean"):
    """Loss of `module` re-derived the authors' way: project the WHOLE map, then for each
    valid RoI take the sampled pixels and evaluate Eq. 3 with plain torch ops."""
    feats = features
    if module.projection is not None:
        feats = module.projection(features)
    sampled = sample_pixels(
        masks, module.num_samples, torch.Generator().manual_seed(generator_seed),
        num_anchors=module.num_anchors, num_positives=module.num_positives,
        num_negatives=module.num_negatives,
    )
    r, c = feats.shape[:2]
    flat = feats.reshape(r, c, -1)
    losses = []
    for i in range(r):
        if not bool(sampled.valid[i]):
            continue
        a = torch.nn.functional.normalize(flat[i][:, sampled.anchor[i]].T, dim=1)
        p = torch.nn.functional.normalize(flat[i][:, sampled.positive[i]].T, dim=1)
        n = torch.nn.functional.normalize(flat[i][:, sampled.negative[i]].T, dim=1)
        e_ap = torch.exp(a @ p.T / module.temperature)  # [A, P]
        e_an = torch.exp(a @ n.T / module.temperature).sum(1, keepdim=True)  # [A, 1]
        pair = -torch.log(e_ap / (e_ap + e_an))
        losses.append(pair.mean() if pair_reduction == "mean" else pair.sum())
    if not losses:
        return None
    total = torch.stack(losses).sum()
    if roi_reduction == "mean":
        total = total / len(losses)
    return total * module.loss_weight


def make_inputs(r=6, c=8, h=7, w=6, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(r, c, h, w, generator=g, dtype=dtype)
    masks = torch.rand(r, h, w, generator=g) < torch.rand(r, 1, 1, generator=g) * 0.8 + 0.1
    masks[0] = False  # invalid: empty instance
    return features, masks


# ---------------------------------------------------------------------------------------------
# info_nce
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("tau", [0.07, 0.5])
def test_info_nce_matches_eq3_loop(reduction, tau):
    g = torch.Generator().manual_seed(1)
    anchor = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    positive = torch.randn(3, 6, 5, generator=g, dtype=torch.float64)
    negative = torch.randn(3, 7, 5, generator=g, dtype=torch.float64)
    got = info_nce(anchor, positive, negative, tau, reduction=reduction)
    assert got.shape == (3,)
    want = [eq3_loop(anchor[i], positive[i], negative[i], tau, reduction) for i in range(3)]
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), rtol=1e-10, atol=0)


def test_info_nce_none_reduction_gives_pair_losses():
    g = torch.Generator().manual_seed(2)
    anchor, positive, negative = (torch.randn(2, k, 3, generator=g) for k in (4, 5, 6))
    pairs = info_nce(anchor, positive, negative, 0.1, reduction="none")
    assert pairs.shape == (2, 4, 5)
    torch.testing.assert_close(pairs.mean(dim=(1, 2)), info_nce(anchor, positive, negative, 0.1))


def test_info_nce_other_positives_not_in_denominator():
    # Anchor = first positive, opposite to the second, orthogonal to the negative. Only the
    # negative may join a pair's denominator: pair 1 is log(1 + e^(0 - 1/t)), pair 2 is
    # log(1 + e^(0 + 1/t)); counting the other positive would change both.
    anchor = torch.tensor([[[1.0, 0.0]]], dtype=torch.float64)
    positive = torch.tensor([[[1.0, 0.0], [-1.0, 0.0]]], dtype=torch.float64)
    negative = torch.tensor([[[0.0, 1.0]]], dtype=torch.float64)
    t = 0.5
    pairs = info_nce(anchor, positive, negative, t, reduction="none")
    torch.testing.assert_close(pairs[0, 0, 0], torch.tensor(math.log1p(math.exp(-1 / t)),
                                                            dtype=torch.float64))
    torch.testing.assert_close(pairs[0, 0, 1], torch.tensor(math.log1p(math.exp(1 / t)),
                                                            dtype=torch.float64))


def test_info_nce_gradcheck():
    g = torch.Generator().manual_seed(3)
    inputs = [torch.randn(2, k, 4, generator=g, dtype=torch.float64, requires_grad=True)
              for k in (3, 2, 4)]
    assert torch.autograd.gradcheck(lambda a, p, n: info_nce(a, p, n, 0.2), inputs)


def test_info_nce_stable_for_small_tau_and_huge_inputs():
    g = torch.Generator().manual_seed(4)
    base = [torch.randn(3, 8, 16, generator=g) for _ in range(3)]
    ref = info_nce(*base, 0.01)
    huge = [(x * 1e30).requires_grad_() for x in base]
    got = info_nce(*huge, 0.01)
    assert torch.isfinite(got).all()
    # Cosine similarity is scale invariant, so the loss must not change.
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)
    got.sum().backward()
    assert all(torch.isfinite(x.grad).all() for x in huge)
    # tau = 1e-3 makes logits up to 1000: exp would overflow float32 without the stable form.
    tiny_tau = info_nce(*base, 1e-3)
    assert torch.isfinite(tiny_tau).all()


def test_info_nce_half_precision_computed_in_float32():
    g = torch.Generator().manual_seed(5)
    base = [torch.randn(2, 4, 8, generator=g) for _ in range(3)]
    got = info_nce(*(x.half() for x in base), 0.07)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, info_nce(*(x.half().float() for x in base), 0.07))


def test_info_nce_ignores_autocast():
    g = torch.Generator().manual_seed(6)
    base = [torch.randn(2, 4, 8, generator=g) for _ in range(3)]
    want = info_nce(*base, 0.07)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        got = info_nce(*base, 0.07)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want)


def test_l2_normalize_survives_overflowing_squares():
    x = torch.tensor([[3e25, 4e25], [0.0, 0.0]])
    torch.testing.assert_close(l2_normalize(x), torch.tensor([[0.6, 0.8], [0.0, 0.0]]))


@pytest.mark.parametrize(
    "shapes, exc, pattern",
    [
        (((2, 3, 4), (2, 3, 5), (2, 3, 4)), ValueError, "agree in R and C"),
        (((2, 3, 4), (1, 3, 4), (2, 3, 4)), ValueError, "agree in R and C"),
        (((2, 3, 4), (2, 3, 4), (2, 0, 4)), ValueError, "negative"),
        (((2, 3), (2, 3, 4), (2, 3, 4)), ValueError, "anchor must be"),
    ],
)
def test_info_nce_rejects_bad_shapes(shapes, exc, pattern):
    with pytest.raises(exc, match=pattern):
        info_nce(*(torch.randn(s) for s in shapes), 0.07)


def test_info_nce_rejects_bad_arguments():
    x = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match="temperature"):
        info_nce(x, x, x, 0.0)
    with pytest.raises(ValueError, match="temperature"):
        info_nce(x, x, x, float("nan"))
    with pytest.raises(TypeError, match="temperature"):
        info_nce(x, x, x, "0.07")
    with pytest.raises(ValueError, match="reduction"):
        info_nce(x, x, x, 0.07, reduction="max")
    with pytest.raises(TypeError, match="negative"):
        info_nce(x, x, x.long(), 0.07)
    with pytest.raises(TypeError, match="dtype"):
        info_nce(x, x, x.double(), 0.07)


# ---------------------------------------------------------------------------------------------
# DenseContrastiveLoss
# ---------------------------------------------------------------------------------------------


def build(c=8, dtype=torch.float64, seed=0, **kwargs):
    torch.manual_seed(seed)
    return DenseContrastiveLoss(c, **kwargs).to(dtype)


@pytest.mark.parametrize("with_projection", [True, False])
@pytest.mark.parametrize("roi_reduction, pair_reduction", [("mean", "mean"), ("sum", "sum")])
def test_module_matches_reference(with_projection, roi_reduction, pair_reduction):
    module = build(num_samples=4, temperature=0.07, loss_weight=1.7,
                   with_projection=with_projection, roi_reduction=roi_reduction,
                   pair_reduction=pair_reduction)
    features, masks = make_inputs()
    got = module(features, masks, generator=torch.Generator().manual_seed(11))
    want = module_reference(module, features, masks, 11, roi_reduction, pair_reduction)
    assert want is not None
    torch.testing.assert_close(got, want, rtol=1e-10, atol=0)


def test_module_per_roi_values_equal_eq3_loop():
    # Tie the module to the plain-Python Eq. 3 loop as well (no projection: cosine similarity).
    module = build(num_samples=3, with_projection=False, roi_reduction="sum", loss_weight=1.0)
    features, masks = make_inputs(r=3, seed=4)
    masks[0] = masks[1]  # make every RoI valid with high probability
    got = module(features, masks, generator=torch.Generator().manual_seed(5))
    s = sample_pixels(masks, 3, torch.Generator().manual_seed(5))
    assert s.valid.all()
    flat = features.flatten(2)
    want = sum(eq3_loop(flat[i][:, s.anchor[i]].T, flat[i][:, s.positive[i]].T,
                        flat[i][:, s.negative[i]].T, 0.07, "mean") for i in range(3))
    assert got.item() == pytest.approx(want, rel=1e-10)


def test_projection_on_sampled_pixels_equals_full_map_gradients_too():
    # Same value AND same gradients (features and both projection convs) as the authors'
    # project-the-whole-map-then-sample order.
    module = build(num_samples=5)
    features, masks = make_inputs(seed=6)
    features.requires_grad_()
    got = module(features, masks, generator=torch.Generator().manual_seed(7))
    grads_got = torch.autograd.grad(got, [features, *module.parameters()])
    want = module_reference(module, features, masks, 7)
    grads_want = torch.autograd.grad(want, [features, *module.parameters()])
    torch.testing.assert_close(got, want, rtol=1e-10, atol=0)
    for a, b in zip(grads_got, grads_want):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12)


def test_unequal_set_sizes_match_reference():
    module = build(num_samples=4, num_anchors=2, num_positives=5, num_negatives=3)
    features, masks = make_inputs(seed=8)
    got = module(features, masks, generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(got, module_reference(module, features, masks, 9),
                               rtol=1e-10, atol=0)


def test_gradients_reach_features_and_projection():
    module = build(dtype=torch.float32, num_samples=4)
    features, masks = make_inputs(dtype=torch.float32)
    features.requires_grad_()
    module(features, masks, generator=torch.Generator().manual_seed(1)).backward()
    assert features.grad.abs().sum() > 0
    assert not features.grad[0].any()  # invalid RoI 0 takes no part
    names = {name for name, _ in module.named_parameters()}
    assert names == {"projection.0.weight", "projection.0.bias",
                     "projection.2.weight", "projection.2.bias"}
    for name, p in module.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        if name.endswith("weight"):
            assert p.grad.abs().sum() > 0, name


def test_without_projection_has_no_parameters_and_ignores_scale():
    module = build(with_projection=False, num_samples=4)
    assert list(module.parameters()) == []
    features, masks = make_inputs()
    a = module(features, masks, generator=torch.Generator().manual_seed(3))
    b = module(features * 123.0, masks, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)


def test_counters_and_first_rois_cap_before_validity():
    module = build(num_samples=4, max_rois=3)
    features, masks = make_inputs(r=6)
    masks[1] = True  # RoIs 0 and 1 invalid; only RoI 2 of the first three is valid
    got = module(features, masks, generator=torch.Generator().manual_seed(4))
    assert module.last_num_rois == 3
    assert int(module.last_num_valid) == 1
    uncapped = build(num_samples=4, max_rois=None)
    want = uncapped(features[:3], masks[:3], generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(got, want)
    uncapped(features, masks, generator=torch.Generator().manual_seed(4))
    assert uncapped.last_num_rois == 6
    assert int(uncapped.last_num_valid) == 6 - 2


def test_cap_counts_invalid_rois_like_the_authors():
    # The first max_rois RoIs are all invalid: the loss is zero even though valid RoIs follow.
    module = build(num_samples=4, max_rois=2)
    features, masks = make_inputs(r=5)
    masks[1] = False
    loss = module(features, masks)
    assert loss.item() == 0.0 and int(module.last_num_valid) == 0


def test_random_roi_selection():
    module = build(num_samples=4, max_rois=3, roi_selection="random")
    features, masks = make_inputs(r=8, seed=10)
    got = module(features, masks, generator=torch.Generator().manual_seed(12))
    g = torch.Generator().manual_seed(12)
    keep = torch.topk(torch.rand(8, generator=g), 3).indices
    uncapped = build(num_samples=4, max_rois=None)
    # Continue the same random stream for the pixel draws.
    want = uncapped(features[keep], masks[keep], generator=g)
    torch.testing.assert_close(got, want)
    assert module.last_num_rois == 3
    chosen = set()
    for seed in range(20):
        g = torch.Generator().manual_seed(seed)
        chosen.add(tuple(sorted(torch.topk(torch.rand(8, generator=g), 3).indices.tolist())))
        module(features, masks, generator=torch.Generator().manual_seed(seed))
    assert len(chosen) > 5  # subsets really vary


def _assert_exact_graph_zero(loss, features, module):
    assert loss.dim() == 0
    assert loss.item() == 0.0
    assert loss.grad_fn is not None
    loss.backward()
    assert features.grad is not None and not features.grad.any()
    for name, p in module.named_parameters():
        assert p.grad is not None and not p.grad.any(), name


def test_no_valid_roi_gives_exact_zero_with_graph():
    module = build(dtype=torch.float32, num_samples=4, loss_weight=1.2)
    features, masks = make_inputs(dtype=torch.float32)
    masks[:] = False
    masks[2] = True  # full mask: no negatives
    features.requires_grad_()
    loss = module(features, masks)
    assert int(module.last_num_valid) == 0 and module.last_num_rois == 6
    _assert_exact_graph_zero(loss, features, module)


def test_zero_rois_gives_exact_zero_with_graph():
    module = build(dtype=torch.float32, num_samples=4)
    features = torch.zeros(0, 8, 7, 6, requires_grad=True)
    loss = module(features, torch.zeros(0, 7, 6, dtype=torch.bool))
    assert module.last_num_rois == 0 and int(module.last_num_valid) == 0
    _assert_exact_graph_zero(loss, features, module)


@pytest.mark.parametrize("r", [0, 3])
def test_half_features_give_float32_loss(r):
    module = build(dtype=torch.bfloat16, num_samples=4)
    features, masks = make_inputs(r=max(r, 1), dtype=torch.bfloat16)
    loss = module(features[:r], masks[:r])
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_stable_with_small_tau_and_huge_features():
    module = build(dtype=torch.float32, num_samples=8, temperature=0.01)
    features, masks = make_inputs(dtype=torch.float32, h=12, w=12)
    features = (features * 1e30).requires_grad_()
    loss = module(features, masks, generator=torch.Generator().manual_seed(2))
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    assert torch.isfinite(features.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in module.parameters())


def test_default_hyperparameters_follow_authors():
    module = DenseContrastiveLoss(256)
    assert (module.num_samples, module.temperature, module.loss_weight, module.max_rois) == (
        32, 0.07, 1.2, 100)
    assert module.with_projection and module.roi_selection == "first"
    assert module.pair_reduction == "mean" and module.roi_reduction == "mean"
    assert module.projection[0].kernel_size == (1, 1)
    assert isinstance(module.projection[1], torch.nn.ReLU)


def test_realistic_size_runs():
    # Mask R-CNN sizes (C = 256, 28 x 28, K = 32), float32, default module.
    module = DenseContrastiveLoss(256)
    g = torch.Generator().manual_seed(0)
    features = torch.randn(12, 256, 28, 28, generator=g, requires_grad=True)
    masks = torch.rand(12, 28, 28, generator=g) < 0.5
    loss = module(features, masks, generator=g)
    loss.backward()
    assert torch.isfinite(loss) and int(module.last_num_valid) == 12
    # Random embeddings: the loss is of the order of log(1 + K).
    assert 1.0 < loss.item() < 20.0


def test_module_rejects_bad_inputs():
    module = build(c=8, dtype=torch.float32, num_samples=4)
    feats = torch.randn(3, 8, 5, 5)
    masks = torch.zeros(3, 5, 5, dtype=torch.bool)
    with pytest.raises(TypeError, match="gt_masks.*bool"):
        module(feats, masks.to(torch.uint8))
    with pytest.raises(TypeError, match="features"):
        module(feats.long(), masks)
    with pytest.raises(ValueError, match=r"\(3, 8, 5, 5\).*\(2, 5, 5\)"):
        module(feats, masks[:2])
    with pytest.raises(ValueError, match=r"\(3, 8, 5, 5\).*\(3, 5, 4\)"):
        module(feats, masks[:, :, :4])
    with pytest.raises(ValueError, match="channels=8"):
        module(torch.randn(3, 4, 5, 5), masks)
    with pytest.raises(ValueError, match="features"):
        module(feats[0], masks)


@pytest.mark.parametrize(
    "kwargs, exc, name",
    [
        ({"channels": 0}, ValueError, "channels"),
        ({"num_samples": 0}, ValueError, "num_samples"),
        ({"temperature": 0.0}, ValueError, "temperature"),
        ({"temperature": -1.0}, ValueError, "temperature"),
        ({"loss_weight": float("inf")}, ValueError, "loss_weight"),
        ({"max_rois": 0}, ValueError, "max_rois"),
        ({"roi_selection": "last"}, ValueError, "roi_selection"),
        ({"pair_reduction": "none"}, ValueError, "pair_reduction"),
        ({"roi_reduction": "max"}, ValueError, "roi_reduction"),
        ({"num_negatives": 0}, ValueError, "num_negatives"),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs, exc, name):
    args = {"channels": 8, **kwargs}
    with pytest.raises(exc, match=name):
        DenseContrastiveLoss(**args)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_forward_backward_without_host_sync():
    device = torch.device("cuda")
    module = DenseContrastiveLoss(256, max_rois=50, roi_selection="random").to(device)
    g = torch.Generator(device=device).manual_seed(0)
    features = torch.randn(64, 256, 28, 28, device=device, generator=g, requires_grad=True)
    masks = torch.rand(64, 28, 28, device=device, generator=g) < 0.4
    masks[:3] = False
    empty = torch.zeros(0, 256, 28, 28, device=device, requires_grad=True)
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        loss = module(features, masks, generator=g)
        loss.backward()
        zero = module(empty, torch.zeros(0, 28, 28, dtype=torch.bool, device=device))
        zero.backward()
    finally:
        torch.cuda.set_sync_debug_mode(previous)
    assert torch.isfinite(loss) and loss.item() > 0
    assert zero.item() == 0.0
    with pytest.raises(ValueError, match="generator"):
        module(features, masks, generator=torch.Generator())
    with pytest.raises(ValueError, match="gt_masks"):
        module(features, masks.cpu())
    assert torch.isfinite(features.grad).all() and features.grad.abs().sum() > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in module.parameters())
    assert module.last_num_rois == 0 and module.last_num_valid.device.type == "cuda"
