"""Tests of the CAC loss (dcl_core.cac, dcl_core.cac_roi) against a plain re-statement of the
official code's rule: loops over images and classes, nonzero / argsort / slicing per class for
the anchor sampling, and Python floats over every anchor pair for the loss."""

import math

import pytest
import torch

from dcl_core.cac import (CACLoss, CACProjectionHead, CACWeightBranch, reduce_classes,
                          select_anchors, weighted_contrast)
from dcl_core.cac_roi import CACMaskLoss, CACSettings
from dcl_core.registry import LOSSES, build_loss, format_loss_option, parse_loss_option

# ---------------------------------------------------------------------------------------------
# Independent reference: the official algorithm, written the plain way.
# ---------------------------------------------------------------------------------------------


def reference_pick(labels, prob, pred, *, max_sample, threshold, ignore_index=255,
                   fp=False, groups_share_budget=True):
    """Official ``_hard_sample_mining`` with sorted picking: labels/pred [G, P] long,
    prob [G, P, K]. Returns the list of (group, pixel) in the official order. With
    ``groups_share_budget=False`` each group (RoI) has its own budget."""
    g_count = labels.shape[0]
    classes = []
    for i in range(g_count):
        per = [int(c) for c in torch.unique(labels[i]) if int(c) != ignore_index]
        classes.append([c for c in per if int((labels[i] == c).sum()) > threshold])
    total = sum(len(c) for c in classes)
    picked = []
    for i in range(g_count):
        t = total if groups_share_budget else len(classes[i])
        if t == 0:
            continue
        n_view = min(max_sample // t, threshold)
        lab, prd = labels[i], pred[i]
        for c in classes[i]:
            if fp:
                hard = ((lab != c) & (lab != ignore_index) & (prd == c)).nonzero().squeeze(1)
            else:
                hard = ((lab == c) & (prd != c)).nonzero().squeeze(1)
            easy = ((lab == c) & (prd == c)).nonzero().squeeze(1)
            nh, ne = hard.numel(), easy.numel()
            if nh >= n_view / 2 and ne >= n_view / 2:
                hk = n_view // 2
                ek = n_view - hk
            elif nh >= n_view / 2:
                ek = ne
                hk = n_view - ek
            elif ne >= n_view / 2:
                hk = nh
                ek = n_view - hk
            else:
                hk, ek = nh, ne
            hard = hard[prob[i, hard, c].argsort(descending=True)[:hk]]
            easy = easy[prob[i, easy, c].argsort()[:ek]]
            picked += [(i, int(p)) for p in hard] + [(i, int(p)) for p in easy]
    return picked


def reference_contrast(feats, labels, conf, tau, base_tau, normalizer="count"):
    """Official ``_contrastive`` up to the reduction, with Python floats: feats list of unit
    vectors, labels list of ints, conf list of confidence lists -> list of per-anchor losses."""
    n = len(labels)
    s = [[sum(a * b for a, b in zip(feats[i], feats[j])) / tau for j in range(n)]
         for i in range(n)]
    losses = []
    for i in range(n):
        row_max = max(s[i])
        w = [((1 - conf[i][labels[j]]) + (1 - conf[j][labels[i]])) / 2 for j in range(n)]
        denom = sum(w[k] * math.exp(s[i][k] - row_max) for k in range(n) if k != i)
        num, count, wsum = 0.0, 0.0, 0.0
        for j in range(n):
            if j == i or labels[j] != labels[i]:
                continue
            log_p = (s[i][j] - row_max) - math.log(denom + 1e-16)
            num += w[j] * log_p
            count += 1
            wsum += w[j]
        div = (count if normalizer == "count" else wsum) + 1e-16
        losses.append(-(tau / base_tau) * num / div)
    return losses


def reference_reduce(losses, labels, how="official"):
    """torch_scatter.scatter_mean(loss, label) then .mean() (``official``), or the variants."""
    if how == "anchor":
        return sum(losses) / len(losses)
    ids = range(max(labels) + 1) if how == "official" else sorted(set(labels))
    means = []
    for c in ids:
        members = [l for l, y in zip(losses, labels) if y == c]
        means.append(sum(members) / len(members) if members else 0.0)
    return sum(means) / len(means)


def reference_semantic(emb, labels, seg, wl, *, loss_weight, tau, base_tau, max_sample,
                       threshold, fp=False, reduction="official", normalizer="count"):
    """The whole official forward for labels already at the embeddings' size."""
    b, d, h, w = emb.shape
    k = seg.shape[1]
    lab = labels.reshape(b, h * w)
    logits = seg.reshape(b, k, h * w).transpose(1, 2)
    prob, pred = torch.softmax(logits, 2), logits.argmax(2)
    conf = torch.softmax(wl.reshape(b, k, h * w).transpose(1, 2), 2)
    feat = torch.nn.functional.normalize(emb.reshape(b, d, h * w).transpose(1, 2), dim=2)
    picked = reference_pick(lab, prob, pred, max_sample=max_sample, threshold=threshold, fp=fp)
    if not picked:
        return None, picked
    f = [feat[i, p].tolist() for i, p in picked]
    y = [int(lab[i, p]) for i, p in picked]
    c = [conf[i, p].tolist() for i, p in picked]
    per = reference_contrast(f, y, c, tau, base_tau, normalizer)
    return reference_reduce(per, y, reduction) * loss_weight, picked


def make_semantic(seed, b=2, d=6, k=4, h=9, w=10, ignore=True):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(b, d, h, w, generator=g, dtype=torch.float64)
    # Blocky labels with uneven class sizes, so some classes miss the threshold.
    labels = torch.randint(0, k, (b, h, w), generator=g)
    labels[:, : h // 2] = torch.randint(0, 2, (b, 1, 1), generator=g)
    if ignore:
        labels[0, -1, :4] = 255
    seg = torch.randn(b, k, h, w, generator=g, dtype=torch.float64) * 2
    wl = torch.randn(b, k, h, w, generator=g, dtype=torch.float64)
    return emb, labels, seg, wl


# ---------------------------------------------------------------------------------------------
# Semantic form
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("max_sample,threshold", [(1024, 6), (20, 6), (7, 12)])
def test_semantic_matches_official_loop(seed, max_sample, threshold):
    emb, labels, seg, wl = make_semantic(seed)
    loss = CACLoss(loss_weight=0.4, max_sample=max_sample, threshold=threshold)
    got = loss(emb, labels, seg, wl)
    want, picked = reference_semantic(emb, labels, seg, wl, loss_weight=0.4, tau=0.1,
                                      base_tau=0.07, max_sample=max_sample, threshold=threshold)
    assert loss.last_num_anchors == len(picked) > 0
    assert got.dtype == torch.float32
    assert float(got) == pytest.approx(want, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_selection_is_the_official_list_in_order(seed):
    emb, labels, seg, wl = make_semantic(seed)
    b, k = labels.shape[0], seg.shape[1]
    lab = labels.reshape(b, -1)
    logits = seg.reshape(b, k, -1).transpose(1, 2)
    prob, pred = torch.softmax(logits, 2), logits.argmax(2)
    for fp in (False, True):
        for max_sample, threshold in ((1024, 6), (20, 6), (9, 15)):
            got = select_anchors(lab, prob, pred, k, max_sample=max_sample, threshold=threshold,
                                 hard_pixels="false_positive" if fp else "missed",
                                 ignore_index=255)
            want = reference_pick(lab, prob, pred, max_sample=max_sample, threshold=threshold,
                                  fp=fp)
            assert list(zip(got.group.tolist(), got.pixel.tolist())) == want
            assert torch.equal(got.label, lab[got.group, got.pixel])


def split_case(num_hard, num_easy, threshold, max_sample):
    """One image, class 0 with num_hard missed and num_easy correct pixels, the rest class 1
    predicted right; -> (hard picked, easy picked, hard probabilities, easy probabilities)."""
    n = num_hard + num_easy + 3
    labels = torch.zeros(1, n, dtype=torch.int64)
    labels[0, num_hard + num_easy:] = 1
    pred = torch.zeros(1, n, dtype=torch.int64)
    pred[0, :num_hard] = 1
    pred[0, num_hard + num_easy:] = 1
    p0 = torch.linspace(0.05, 0.95, n, dtype=torch.float64)[torch.randperm(
        n, generator=torch.Generator().manual_seed(n))]
    prob = torch.stack([p0, 1 - p0], 1).unsqueeze(0)
    sel = select_anchors(labels, prob, pred, 2, max_sample=max_sample, threshold=threshold)
    mine = sel.cls == 0
    px = sel.pixel[mine]
    hard, easy = px[px < num_hard], px[px >= num_hard]
    return hard, easy, p0[:num_hard], p0[num_hard:num_hard + num_easy]


@pytest.mark.parametrize("num_hard,num_easy,want_hard,want_easy", [
    (30, 30, 10, 10),   # both pools >= n_view/2: n_view//2 hard, rest easy
    (30, 4, 16, 4),     # only hard large: all easy, fill with hard
    (3, 40, 3, 17),     # only easy large: all hard, fill with easy
])
def test_split_rule_and_marginal_picking(num_hard, num_easy, want_hard, want_easy):
    # threshold 20 > class-1 size 3, so class 0 alone counts: T = 1, n_view = min(1024, 20)
    hard, easy, p_hard, p_easy = split_case(num_hard, num_easy, threshold=20, max_sample=1024)
    assert (hard.numel(), easy.numel()) == (want_hard, want_easy)
    # hard: the highest true-class probability; easy: the lowest
    assert set(hard.tolist()) == set(p_hard.argsort(descending=True)[:want_hard].tolist())
    assert set((easy - num_hard).tolist()) == set(p_easy.argsort()[:want_easy].tolist())


def test_caps_total_and_per_class():
    # 3 images x 2 qualifying classes: T = 6, max_sample 20 -> n_view = 3 per (image, class)
    labels = torch.zeros(3, 40, dtype=torch.int64)
    labels[:, 20:] = 1
    pred = torch.randint(0, 2, (3, 40), generator=torch.Generator().manual_seed(0))
    prob = torch.rand(3, 40, 2, generator=torch.Generator().manual_seed(1))
    sel = select_anchors(labels, prob, pred, 2, max_sample=20, threshold=10)
    counts = torch.bincount(sel.group * 2 + sel.label, minlength=6)
    assert counts.tolist() == [3] * 6
    # the per-(image, class) cap is threshold when the total budget allows more
    sel = select_anchors(labels, prob, pred, 2, max_sample=1024, threshold=10)
    assert torch.bincount(sel.group * 2 + sel.label).tolist() == [10] * 6
    # per-group budget (the RoI form): T counted per row
    labels[0, :] = 0
    sel = select_anchors(labels, prob, pred, 2, max_sample=8, threshold=10, budget="group")
    assert torch.bincount(sel.group * 2 + sel.label, minlength=6).tolist() == [8, 0, 4, 4, 4, 4]


def test_random_picking_draws_within_the_pools():
    emb, labels, seg, wl = make_semantic(0)
    b, k = labels.shape[0], seg.shape[1]
    lab = labels.reshape(b, -1)
    logits = seg.reshape(b, k, -1).transpose(1, 2)
    prob, pred = torch.softmax(logits, 2), logits.argmax(2)
    kw = dict(max_sample=20, threshold=6, ignore_index=255)
    sorted_sel = select_anchors(lab, prob, pred, k, **kw)
    a = select_anchors(lab, prob, pred, k, anchor_picking="random",
                       generator=torch.Generator().manual_seed(3), **kw)
    again = select_anchors(lab, prob, pred, k, anchor_picking="random",
                           generator=torch.Generator().manual_seed(3), **kw)
    other = select_anchors(lab, prob, pred, k, anchor_picking="random",
                           generator=torch.Generator().manual_seed(4), **kw)
    assert torch.equal(a.pixel, again.pixel)
    assert not torch.equal(a.pixel, other.pixel)

    def pools(sel):
        hard = pred[sel.group, sel.pixel] != sel.label
        return torch.bincount((sel.group * k + sel.label) * 2 + hard.long(), minlength=4 * k)

    assert torch.equal(pools(a), pools(sorted_sel))  # same counts per pool, other pixels
    assert len(set(zip(a.group.tolist(), a.pixel.tolist()))) == a.pixel.numel()  # no repeats


@pytest.mark.parametrize("reduction", ["official", "present", "anchor"])
@pytest.mark.parametrize("normalizer", ["count", "weight"])
def test_options_match_their_loops(reduction, normalizer):
    emb, labels, seg, wl = make_semantic(5)
    loss = CACLoss(loss_weight=1.0, max_sample=30, threshold=6, class_reduction=reduction,
                   positive_normalizer=normalizer)
    want, _ = reference_semantic(emb, labels, seg, wl, loss_weight=1.0, tau=0.1, base_tau=0.07,
                                 max_sample=30, threshold=6, reduction=reduction,
                                 normalizer=normalizer)
    assert float(loss(emb, labels, seg, wl)) == pytest.approx(want, rel=1e-5)


def test_false_positive_hard_pixels_match_the_loop():
    emb, labels, seg, wl = make_semantic(6)
    loss = CACLoss(loss_weight=1.0, max_sample=40, threshold=6, hard_pixels="false_positive")
    want, _ = reference_semantic(emb, labels, seg, wl, loss_weight=1.0, tau=0.1, base_tau=0.07,
                                 max_sample=40, threshold=6, fp=True)
    assert float(loss(emb, labels, seg, wl)) == pytest.approx(want, rel=1e-5)


def test_absent_class_ids_dilute_the_official_reduction():
    # anchors of classes 0 and 3 only: official = (mean_0 + 0 + 0 + mean_3) / 4
    labels = torch.tensor([[0, 0, 3, 3, 3]])
    per = torch.tensor([[1.0, 3.0, 2.0, 4.0, 6.0]])
    valid = torch.ones_like(per, dtype=torch.bool)
    official, has = reduce_classes(per, labels, valid, 5, "official")
    present, _ = reduce_classes(per, labels, valid, 5, "present")
    anchor, _ = reduce_classes(per, labels, valid, 5, "anchor")
    assert has.tolist() == [True]
    assert float(official) == pytest.approx((2.0 + 4.0) / 4)
    assert float(present) == pytest.approx((2.0 + 4.0) / 2)
    assert float(anchor) == pytest.approx(16.0 / 5)


def test_pair_weights_follow_the_confidences():
    # 3 anchors, labels 0, 0, 1, confidences chosen by hand; compare with the loop, and check
    # that a confident weight branch (c_i[y_i] = 1) zeroes the positive pair weights.
    f = torch.nn.functional.normalize(torch.tensor([[1.0, 0.2], [0.8, 0.5], [-0.3, 1.0]]), dim=1)
    y = torch.tensor([0, 0, 1])
    conf = torch.tensor([[0.7, 0.3], [0.4, 0.6], [0.1, 0.9]])
    got = weighted_contrast(f[None], y[None], conf[None], torch.ones(1, 3, dtype=torch.bool),
                            temperature=0.1, base_temperature=0.07)
    want = reference_contrast(f.tolist(), y.tolist(), conf.tolist(), 0.1, 0.07)
    assert got[0].tolist() == pytest.approx(want, rel=1e-5)
    sure = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    got = weighted_contrast(f[None], y[None], sure[None], torch.ones(1, 3, dtype=torch.bool),
                            temperature=0.1, base_temperature=0.07)
    assert got[0].tolist() == [0.0, 0.0, 0.0]


def test_padding_takes_no_part():
    g = torch.Generator().manual_seed(0)
    f = torch.nn.functional.normalize(torch.randn(1, 6, 4, generator=g), dim=2)
    y = torch.tensor([[0, 1, 0, 1, 1, 0]])
    conf = torch.softmax(torch.randn(1, 6, 2, generator=g), 2)
    valid = torch.tensor([[True, True, True, True, False, False]])
    padded = weighted_contrast(f, y, conf, valid, temperature=0.1, base_temperature=0.07)
    alone = weighted_contrast(f[:, :4], y[:, :4], conf[:, :4], valid[:, :4], temperature=0.1,
                              base_temperature=0.07)
    assert torch.allclose(padded[:, :4], alone)
    assert padded[0, 4:].tolist() == [0.0, 0.0]


def test_gradients_flow_to_embeddings_and_weight_logits_only():
    emb, labels, seg, wl = make_semantic(1)
    emb, seg, wl = (t.float().requires_grad_() for t in (emb, seg, wl))
    CACLoss(max_sample=40, threshold=6)(emb, labels, seg, wl).backward()
    assert emb.grad.abs().sum() > 0 and torch.isfinite(emb.grad).all()
    assert wl.grad.abs().sum() > 0
    assert seg.grad is None or seg.grad.abs().sum() == 0  # picking only: no gradient


def test_detach_keys_changes_the_gradient_not_the_value():
    emb, labels, seg, wl = make_semantic(2)
    grads, values = [], []
    for detach in (False, True):
        e = emb.clone().requires_grad_()
        value = CACLoss(max_sample=40, threshold=6, detach_keys=detach)(e, labels, seg, wl)
        value.backward()
        grads.append(e.grad)
        values.append(float(value.detach()))
    assert values[0] == pytest.approx(values[1], rel=1e-6)
    assert not torch.allclose(grads[0], grads[1])


def test_no_qualifying_class_gives_an_exact_zero_with_a_graph():
    emb, labels, seg, wl = make_semantic(0)
    emb = emb.requires_grad_()
    out = CACLoss(threshold=1000)(emb, labels, seg, wl)
    assert float(out.detach()) == 0.0 and out.grad_fn is not None
    out.backward()
    assert torch.equal(emb.grad, torch.zeros_like(emb))


def test_labels_are_resized_by_nearest_neighbour():
    emb, labels, seg, wl = make_semantic(3, h=8, w=8, ignore=False)
    big = labels.repeat_interleave(4, 1).repeat_interleave(4, 2)  # [B, 32, 32]
    loss = CACLoss(max_sample=40, threshold=4)
    assert float(loss(emb, big, seg, wl)) == pytest.approx(float(loss(emb, labels, seg, wl)))


def test_half_inputs_give_a_float32_loss():
    emb, labels, seg, wl = make_semantic(4)
    out = CACLoss(max_sample=40, threshold=6)(emb.half(), labels, seg.half(), wl.half())
    assert out.dtype == torch.float32 and torch.isfinite(out)


@pytest.mark.parametrize("change,error,match", [
    (lambda e, l, s, w: (e, l.int(), s, w), TypeError, "labels must be an int64"),
    (lambda e, l, s, w: (e.long(), l, s, w), TypeError, "embeddings must be a floating"),
    (lambda e, l, s, w: (e, l, s, w.int()), TypeError, "weight_logits must be a floating"),
    (lambda e, l, s, w: (e[0], l, s, w), ValueError, "expected embeddings"),
    (lambda e, l, s, w: (e, l, s[:, :3], w), ValueError, "disagree in B, K"),
    (lambda e, l, s, w: (e, l[:1], s, w), ValueError, "disagree in B, K"),
    (lambda e, l, s, w: (e, l + 1, s, w), ValueError, r"labels must lie in \[0, 4\)"),
])
def test_bad_inputs_raise_one_line_errors(change, error, match):
    inputs = change(*make_semantic(0))
    with pytest.raises(error, match=match) as info:
        CACLoss(max_sample=40, threshold=6)(*inputs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs,error", [
    (dict(temperature=0), ValueError), (dict(max_sample=0), ValueError),
    (dict(threshold=2.5), TypeError), (dict(class_reduction="sum"), ValueError),
    (dict(anchor_picking="hardest"), ValueError), (dict(loss_weight=float("nan")), ValueError),
    (dict(detach_keys=1), TypeError),
])
def test_bad_arguments_raise(kwargs, error):
    with pytest.raises(error):
        CACLoss(**kwargs)


def test_projection_head_and_weight_branch():
    x = torch.randn(2, 12, 5, 5, requires_grad=True)
    proj = CACProjectionHead(12, 8)
    z = proj(x)
    assert z.shape == (2, 8, 5, 5)
    h = torch.relu(proj.norm(proj.conv(x)))
    assert torch.allclose(z, h + proj.residual(h))  # residual 1x1 conv on h
    assert proj.conv.bias is None and proj.residual.bias is not None
    branch = CACWeightBranch(12, 4)
    logits = branch(x)
    assert logits.shape == (2, 4, 5, 5) and branch.loss_factor == 1.5
    logits.sum().backward()
    assert x.grad is None  # the stop-gradient: the weight branch never reaches its input
    z.sum().backward()
    assert x.grad is not None


# ---------------------------------------------------------------------------------------------
# Binary RoI form (mask head)
# ---------------------------------------------------------------------------------------------


def make_rois(seed, r=5, c=8, h=10, w=10):
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(r, c, h, w, generator=g)
    masks = torch.rand(r, h, w, generator=g) < torch.rand(r, 1, 1, generator=g) * 0.8 + 0.1
    masks[0] = True  # fg only: the bg slot of the official reduction dilutes this RoI
    logits = torch.randn(r, h, w, generator=g) * 2 + (masks.float() - 0.5)
    return features, masks, logits


def reference_roi(module, features, masks, logits):
    """The official rule per RoI (its own budget), fg/bg classes, sigmoid probabilities as
    picking probabilities and confidences; mean over RoIs with anchors."""
    s = module.settings
    features, masks, logits = features[: s.max_rois], masks[: s.max_rois], logits[: s.max_rois]
    r, c, h, w = features.shape
    labels = masks.reshape(r, -1).long()
    p = torch.sigmoid(logits.reshape(r, -1))
    prob = torch.stack([1 - p, p], 2)
    pred = (p > 0.5).long()
    picks = [[q for _, q in reference_pick(labels[i:i + 1], prob[i:i + 1], pred[i:i + 1],
                                          max_sample=s.max_anchors, threshold=s.threshold)]
             for i in range(r)]
    if s.projected_pixels == "all":
        z = module.projection(features).flatten(2)
    else:  # the anchors of every RoI projected together: one batch-norm population
        flat = features.flatten(2)
        columns = [flat[i, :, q] for i in range(r) for q in picks[i]]
        projected = module.projection(torch.stack(columns, 1)[None, :, :, None])[0, :, :, 0]
        z = torch.zeros(r, projected.shape[0], h * w)
        j = 0
        for i in range(r):
            for q in picks[i]:
                z[i, :, q] = projected[:, j]
                j += 1
    z = torch.nn.functional.normalize(z, dim=1)
    losses = []
    for i in range(r):
        px = picks[i]
        if not px:
            continue
        y = [int(labels[i, q]) for q in px]
        per = reference_contrast([z[i, :, q].tolist() for q in px], y,
                                 [prob[i, q].tolist() for q in px], s.temperature,
                                 s.base_temperature, s.positive_normalizer)
        losses.append(reference_reduce(per, y, s.class_reduction))
    return sum(losses) / len(losses) * s.loss_weight if losses else 0.0


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("settings", [
    dict(max_anchors=64, threshold=32),
    dict(max_anchors=20, threshold=15),       # the per-RoI budget binds: n_view = 10
    dict(max_anchors=64, threshold=32, max_rois=3, class_reduction="present"),
    dict(max_anchors=30, threshold=20, positive_normalizer="weight", loss_weight=0.4),
    dict(max_anchors=64, threshold=32, projected_pixels="anchors"),
])
def test_roi_form_matches_the_per_roi_loop(seed, settings, one_thread):
    features, masks, logits = make_rois(seed)
    module = CACMaskLoss(8, CACSettings(**settings))
    got = module(features, masks, logits)
    with torch.no_grad():
        want = reference_roi(module, features, masks, logits)
    assert module.last_num_anchors > 0
    assert float(got.detach()) == pytest.approx(want, rel=1e-4, abs=1e-6)


def test_roi_form_gradients_and_confidence_detach():
    features, masks, logits = make_rois(1)
    for detach, logit_grad in ((True, False), (False, True)):
        f, l = features.clone().requires_grad_(), logits.clone().requires_grad_()
        module = CACMaskLoss(8, CACSettings(detach_confidence=detach))
        module(f, masks, l).backward()
        assert f.grad.abs().sum() > 0 and torch.isfinite(f.grad).all()
        assert module.projection.conv.weight.grad.abs().sum() > 0
        assert (l.grad is not None and l.grad.abs().sum() > 0) == logit_grad


@pytest.mark.parametrize("projected", ["all", "anchors"])
def test_roi_form_without_anchors_is_an_exact_zero(projected):
    features, masks, logits = make_rois(0, h=5, w=5)  # 25 px per RoI, never > 32 per class
    features.requires_grad_()
    module = CACMaskLoss(8, CACSettings(projected_pixels=projected))
    out = module(features, masks, logits)
    assert float(out.detach()) == 0.0 and out.grad_fn is not None
    out.backward()
    assert module.projection.conv.weight.grad is not None
    empty = module(features[:0], masks[:0], logits[:0])
    assert float(empty.detach()) == 0.0 and module.last_num_rois == 0


@pytest.mark.parametrize("change,error,match", [
    (lambda f, m, l: (f, m, None), ValueError, "CAC needs mask_logits"),
    (lambda f, m, l: (f, m.float(), l), TypeError, "gt_masks must be a bool"),
    (lambda f, m, l: (f, m, l.long()), TypeError, "mask_logits must be a floating"),
    (lambda f, m, l: (f[:, :4], m, l), ValueError, "built with channels=8"),
    (lambda f, m, l: (f, m, l[:, :3]), ValueError, "disagree in R, H or W"),
    (lambda f, m, l: (f, m, l[None]), ValueError, "expected features"),
])
def test_roi_form_bad_inputs_raise_one_line_errors(change, error, match):
    with pytest.raises(error, match=match) as info:
        CACMaskLoss(8)(*change(*make_rois(0)))
    assert "\n" not in str(info.value)


def test_settings_registry_and_loss_option_round_trip():
    assert LOSSES["cac"].settings is CACSettings and LOSSES["cac"].module is CACMaskLoss
    default = CACSettings()
    assert (default.loss_weight, default.temperature, default.base_temperature) == (0.1, 0.1, 0.07)
    assert default.variant_name() == "cac_w0.1_t0.1"
    changed = parse_loss_option(["cac", "loss_weight=0.4", "class_reduction=present",
                                 "detach_confidence=False", "max_rois=None"])
    assert changed == CACSettings(loss_weight=0.4, class_reduction="present",
                                  detach_confidence=False, max_rois=None)
    assert changed.variant_name() == ("cac_w0.4_t0.1_max_roisall_class_reductionpresent"
                                      "_detach_confidenceFalse")
    assert parse_loss_option(format_loss_option(changed)) == changed
    assert CACSettings.from_mapping(changed.to_mapping()) == changed
    assert build_loss(CACSettings(loss_weight=0), 8) is None
    assert isinstance(build_loss(default, 8), CACMaskLoss)


@pytest.mark.parametrize("mapping,error,match", [
    ({"num_samples": 3}, ValueError, "unknown key"),
    ({"temperature": -1}, ValueError, "temperature must be finite and > 0"),
    ({"max_anchors": 0}, ValueError, "max_anchors must be >= 1"),
    ({"threshold": 1.5}, TypeError, "threshold must be an int"),
    ({"class_reduction": "sum"}, ValueError, "class_reduction must be one of"),
    ({"detach_confidence": "yes"}, TypeError, "detach_confidence must be a bool"),
    ({"projected_pixels": "map"}, ValueError, "projected_pixels must be one of"),
])
def test_settings_errors_are_one_line(mapping, error, match):
    with pytest.raises(error, match=match) as info:
        CACSettings.from_mapping(mapping)
    assert "\n" not in str(info.value)
