"""Tests of dcl_core's ContrastMask loss against plain loops of the official code's equations
(shared/reference/contrastmask-cac.md, A.3-A.4), and of its key sampling's statistics."""

import math

import numpy as np
import pytest
import torch

from dcl_core import ContrastMaskLoss, ContrastMaskSettings, build_loss, loss_settings
from dcl_core.contrastmask import contrastmask_term, nonlocal_enhance
from dcl_core.contrastmask_keys import (contrastmask_key_sets, mask_edges, sample_counts,
                                        sample_key_sets, sample_without_replacement)

QUIRKS = ("shared_query", "shift_keys", "untempered_positive", "inner_edge_easy")

# ---------------------------------------------------------------------------------------------
# Independent references: numpy/scipy as the official code uses them, and Python-float loops.
# ---------------------------------------------------------------------------------------------


def sets_loop(mask, cam=None, novel=False, t=0.1, inner_edge_easy=True):
    """One RoI's (query_fg, query_bg, E+, E-, H+, H-) as numpy bool arrays, the way
    sample_utils.py builds them: np.gradient edges, scipy's distance transform < 2."""
    from scipy.ndimage import distance_transform_edt

    if novel:
        c = (cam - cam.min()) / (cam.max() - cam.min())
        fg, bg = c > 1 - t, c < t
        return fg, bg, fg, bg, fg, bg
    gy, gx = np.gradient(mask.astype(np.float64))
    edges = (gy != 0) | (gx != 0)
    band = distance_transform_edt(~edges) < 2
    hard = band & ~edges if inner_edge_easy else band
    return mask, ~mask, mask & ~hard, ~(mask | band), hard & mask, hard & ~mask


def unit_cos(x, y):
    nx, ny = math.sqrt(sum(a * a for a in x)), math.sqrt(sum(b * b for b in y))
    return sum(a * b for a, b in zip(x, y)) / (nx * ny)


def info_loss_loop(query, positives, negatives, tau, shift=True, untempered=True):
    """INFOloss for one query (contrastive_head.py:L161-178) with Python floats; returns the
    SUM over positives (the caller divides by the batch's positive count)."""
    def sim(k):
        return unit_cos(query, [a - b for a, b in zip(k, query)] if shift else k)
    neg = sum(math.exp(sim(k) / tau) for k in negatives)
    total = 0.0
    for p in positives:
        s = sim(p)
        total += -math.log(math.exp(s / tau) / (math.exp(s if untempered else s / tau) + neg))
    return total


def loss_loop(emb, query_sets, drawn, keep, settings):
    """The four-term bracket (reference A.4) over RoIs with plain loops.

    emb: [R][P][E] floats; query_sets: (fg, bg) lists of per-RoI pixel lists; drawn: dict of
    set name -> per-RoI pixel lists; keep: per-RoI bools."""
    s = settings
    kept = [i for i, k in enumerate(keep) if k]

    def mean(vectors):
        return [sum(col) / len(vectors) for col in zip(*vectors)]

    queries = {name: [mean([emb[i][j] for j in pix]) for i, pix in enumerate(region)]
               for name, region in zip(("fg", "bg"), query_sets)}
    terms = [("fg", "easy_pos", "easy_neg", s.easy_temperature),
             ("fg", "hard_pos", "hard_neg", s.hard_temperature),
             ("bg", "easy_neg", "easy_pos", s.easy_temperature),
             ("bg", "hard_neg", "hard_pos", s.hard_temperature)]
    total = 0.0
    for q_name, pos_name, neg_name, tau in terms:
        n_pos = sum(len(drawn[pos_name][i]) for i in kept)
        acc = 0.0
        if s.shared_query:
            q = mean([queries[q_name][i] for i in kept])
            pos = [emb[i][j] for i in kept for j in drawn[pos_name][i]]
            neg = [emb[i][j] for i in kept for j in drawn[neg_name][i]]
            acc = info_loss_loop(q, pos, neg, tau, s.shift_keys, s.untempered_positive)
        else:
            for i in kept:
                acc += info_loss_loop(queries[q_name][i],
                                      [emb[i][j] for j in drawn[pos_name][i]],
                                      [emb[i][j] for j in drawn[neg_name][i]],
                                      tau, s.shift_keys, s.untempered_positive)
        total += acc / max(1, n_pos)
    return total


def disk_masks(radii, side=12, centre=(6, 5)):
    yy, xx = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    return torch.stack([((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) < r * r for r in radii])


def small_settings(**kw):
    base = dict(num_encoder_convs=1, num_projector_layers=2, embed_channels=6,
                detach_features=False, ramp_epochs=0)
    return ContrastMaskSettings(**{**base, **kw})


# ---------------------------------------------------------------------------------------------
# Key sets: torch substitutes against numpy/scipy
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("inner_edge_easy", [True, False])
def test_key_sets_match_numpy_scipy(inner_edge_easy):
    g = torch.Generator().manual_seed(3)
    masks = torch.cat([disk_masks([0.5, 2, 4, 9]),
                       torch.rand(4, 12, 12, generator=g) < 0.5,
                       torch.zeros(1, 12, 12, dtype=torch.bool),
                       torch.ones(1, 12, 12, dtype=torch.bool)])
    sets = contrastmask_key_sets(masks, inner_edge_easy=inner_edge_easy)
    for i, m in enumerate(masks.numpy()):
        want = sets_loop(m, inner_edge_easy=inner_edge_easy)
        if not m.any() or m.all():
            # no edges: scipy's transform of an all-ones map is not a distance; the hard sets are
            # empty in torch, and the RoI is dropped by both (checked below)
            assert not sets.hard_pos[i].any() and not sets.hard_neg[i].any()
            continue
        for got, ref in zip(sets, want):
            np.testing.assert_array_equal(got[i].numpy(), ref, err_msg=f"RoI {i}")
    keep = sample_key_sets(sets, 0.3, 5).keep
    assert not keep[-2:].any()


def test_edges_are_a_two_pixel_band():
    mask = torch.zeros(1, 8, 8, dtype=torch.bool)
    mask[0, 2:6, 2:6] = True
    edges = mask_edges(mask)[0]
    # a 4x4 square: its outer ring and the 6x6 ring just outside (corners excepted by gradient)
    assert edges[2:6, 2:6].sum() == 12 and not edges[3:5, 3:5].any()
    assert edges[1, 2:6].all() and edges[6, 2:6].all() and not edges[0].any()


def test_novel_sets_come_from_the_cam():
    g = torch.Generator().manual_seed(0)
    masks = disk_masks([3, 4])
    cam = torch.rand(2, 12, 12, generator=g) * 5 - 1
    novel = torch.tensor([False, True])
    sets = contrastmask_key_sets(masks, cam, novel, cam_threshold=0.1)
    want_base = sets_loop(masks[0].numpy())
    want_novel = sets_loop(None, cam[1].numpy(), novel=True, t=0.1)
    for got, base, nov in zip(sets, want_base, want_novel):
        np.testing.assert_array_equal(got[0].numpy(), base)
        np.testing.assert_array_equal(got[1].numpy(), nov)


# ---------------------------------------------------------------------------------------------
# The loss against the loops, quirk options included
# ---------------------------------------------------------------------------------------------


def run_against_loop(settings, masks, seed, cam=None, novel=None):
    torch.manual_seed(0)
    r, h, w = masks.shape
    module = ContrastMaskLoss.from_settings(settings, 4).double()
    features = torch.randn(r, 4, h, w, generator=torch.Generator().manual_seed(1),
                           dtype=torch.float64)
    got = module(features, masks, cam=cam, is_novel=novel,
                 generator=torch.Generator().manual_seed(seed))
    # The same draw: the forward's only random numbers are the key draws.
    sets = contrastmask_key_sets(masks, cam, novel, cam_threshold=settings.cam_threshold,
                                 inner_edge_easy=settings.inner_edge_easy)
    drawn = sample_key_sets(sets, settings.sample_ratio, settings.min_pixels,
                            torch.Generator().manual_seed(seed))
    # the sets themselves from the numpy/scipy loop
    loop_sets = [sets_loop(masks[i].numpy(), None if cam is None else cam[i].numpy(),
                           bool(novel[i]) if novel is not None else False,
                           settings.cam_threshold, settings.inner_edge_easy) for i in range(r)]
    names = ("easy_pos", "easy_neg", "hard_pos", "hard_neg")
    keep = [all(loop_sets[i][2 + k].sum() >= settings.min_pixels for k in range(4))
            for i in range(r)]
    assert drawn.keep.tolist() == keep
    picked = {}
    for k, name in enumerate(names):
        per_roi = []
        for i in range(r):
            sel = getattr(drawn, name)[i].numpy()
            n = int(loop_sets[i][2 + k].sum())
            assert not (sel & ~loop_sets[i][2 + k]).any()
            expected = math.ceil(np.float32(settings.sample_ratio) * np.float32(n)) if keep[i] else 0
            assert sel.sum() == expected
            per_roi.append(list(np.flatnonzero(sel.reshape(-1))))
        picked[name] = per_roi
    with torch.no_grad():
        emb = module.embed(module.encode(features)).tolist()
    query_sets = tuple([list(np.flatnonzero(loop_sets[i][q].reshape(-1))) for i in range(r)]
                       for q in (0, 1))
    want = loss_loop(emb, query_sets, picked, keep, settings) * settings.loss_weight
    assert float(got.detach()) == pytest.approx(want, rel=1e-9, abs=1e-12)
    return float(got.detach())


@pytest.mark.parametrize("quirks", [
    {},  # the official code
    {"shared_query": False},
    {"shift_keys": False},
    {"untempered_positive": False},
    {"inner_edge_easy": False},
    dict.fromkeys(QUIRKS, False),  # every paper-described variant
])
def test_loss_matches_the_reference_loop(quirks):
    masks = torch.cat([disk_masks([3, 4.5, 5.5]), disk_masks([1], centre=(2, 2))])
    value = run_against_loop(small_settings(**quirks), masks, seed=7)
    assert value > 0


def test_loss_with_novel_rois_matches_the_loop():
    g = torch.Generator().manual_seed(5)
    masks = disk_masks([3, 4.5, 5])
    cam = torch.rand(3, 12, 12, generator=g, dtype=torch.float64)
    run_against_loop(small_settings(), masks, seed=2, cam=cam,
                     novel=torch.tensor([False, True, True]))


def test_quirks_change_the_value():
    masks = disk_masks([3, 4.5, 5.5])
    official = run_against_loop(small_settings(), masks, seed=7)
    for key in QUIRKS:
        assert run_against_loop(small_settings(**{key: False}), masks, seed=7) != official, key


def test_term_stable_and_empty_cases():
    sim = torch.tensor([[0.5, -0.2, 0.9, 0.1]], dtype=torch.float64)
    pos = torch.tensor([[True, False, True, False]])
    neg = ~pos
    got = contrastmask_term(sim, pos, neg, 0.3)
    want = info_loss_loop([1.0], [], [], 0.3)  # zero by construction
    assert want == 0
    manual = sum(-math.log(math.exp(s / 0.3) / (math.exp(s) + math.exp(-0.2 / 0.3)
                                                 + math.exp(0.1 / 0.3))) for s in (0.5, 0.9)) / 2
    assert float(got) == pytest.approx(manual, rel=1e-12)
    none = contrastmask_term(sim, torch.zeros_like(pos), neg, 0.3)
    assert float(none) == 0.0


def test_epoch_ramp_and_weight():
    s = ContrastMaskSettings()
    assert [s.epoch_weight(e) for e in range(6)] == [0.25, 0.25, 0.5, 0.75, 1.0, 1.0]
    masks = disk_masks([3, 4.5])
    module = ContrastMaskLoss.from_settings(ContrastMaskSettings(num_encoder_convs=1,
                                                                 embed_channels=6), 4).double()
    assert module.epoch_weight == 0.25
    features = torch.randn(2, 4, 12, 12, dtype=torch.float64)
    first = module(features, masks, generator=torch.Generator().manual_seed(0))
    module.set_epoch(5)
    later = module(features, masks, generator=torch.Generator().manual_seed(0))
    assert float(later.detach()) == pytest.approx(4 * float(first.detach()), rel=1e-9)


def test_detached_features_get_no_gradient_but_the_head_does():
    module = ContrastMaskLoss.from_settings(ContrastMaskSettings(num_encoder_convs=1,
                                                                 embed_channels=6), 4)
    features = torch.randn(3, 4, 12, 12, requires_grad=True)
    loss = module(features, disk_masks([3, 4, 5]), generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert features.grad is None
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in module.parameters())
    assert module.encoder[0].weight.grad.abs().sum() > 0


def test_no_kept_roi_and_no_roi_give_an_exact_zero_reaching_every_parameter():
    module = ContrastMaskLoss.from_settings(small_settings(), 4)
    for masks in (disk_masks([0.5, 1]), torch.zeros(0, 12, 12, dtype=torch.bool)):
        features = torch.randn(masks.shape[0], 4, 12, 12, requires_grad=True)
        loss = module(features, masks)
        assert float(loss.detach()) == 0.0 and int(module.last_num_valid) == 0
        loss.backward()
        assert all(p.grad is not None for p in module.parameters())


def test_mask_logits_are_accepted_and_ignored():
    module = ContrastMaskLoss.from_settings(small_settings(), 4)
    features = torch.randn(2, 4, 12, 12)
    masks = disk_masks([3, 4.5])
    a = module(features, masks, generator=torch.Generator().manual_seed(0))
    b = module(features, masks, torch.randn(2, 12, 12), generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


def test_nonlocal_enhance_against_a_loop():
    x = torch.randn(2, 3, 2, 3, dtype=torch.float64)
    got = nonlocal_enhance(x)
    flat = x.reshape(2, 3, 6)
    for r in range(2):
        for p in range(6):
            weights = [math.exp(unit_cos(flat[r, :, p].tolist(), flat[r, :, q].tolist()))
                       for q in range(6)]
            z = sum(weights)
            want = [sum(wq / z * float(flat[r, c, q]) for q, wq in enumerate(weights))
                    for c in range(3)]
            assert got[r, :, p // 3, p % 3].tolist() == pytest.approx(want, rel=1e-9)


# ---------------------------------------------------------------------------------------------
# Sampling statistics
# ---------------------------------------------------------------------------------------------


def test_sampling_is_uniform_without_replacement():
    members = torch.zeros(2, 10, dtype=torch.bool)
    members[0, [1, 3, 4, 8]] = True
    members[1, :] = True
    counts = torch.tensor([2, 3])
    g = torch.Generator().manual_seed(0)
    hits = torch.zeros(2, 10)
    subsets = set()
    trials = 3000
    for _ in range(trials):
        drawn = sample_without_replacement(members, counts, g)
        assert drawn.sum(1).tolist() == [2, 3]  # exact counts: no pixel drawn twice
        assert not (drawn & ~members).any()
        hits += drawn
        subsets.add(tuple(torch.nonzero(drawn[0]).flatten().tolist()))
    assert len(subsets) == 6  # every 2-subset of 4 members occurs
    freq = hits / trials
    # inclusion probability k/n: 0.5 and 0.3; 5 sigma of a binomial over 3000 trials
    assert torch.allclose(freq[0, [1, 3, 4, 8]], torch.full((4,), 0.5), atol=0.05)
    assert torch.allclose(freq[1], torch.full((10,), 0.3), atol=0.045)


@pytest.mark.parametrize("n, want", [(5, 2), (7, 3), (10, 3), (20, 6), (33, 10), (784, 236),
                                     (100, 31)])
def test_the_30_percent_rule(n, want):
    # ceil(0.3 n) in float32, as the official code computes it on float32 set sizes: 0.3f x 100
    # rounds to 30.000002, so a 100-pixel set gives 31 keys, not 30.
    assert math.ceil(float(np.float32(0.3) * np.float32(n))) == want
    assert int(sample_counts(torch.tensor([n]), 0.3)) == want


def test_rois_with_a_set_under_5_pixels_are_dropped():
    masks = torch.zeros(5, 12, 12, dtype=torch.bool)
    masks[0, 3:9, 3:9] = True        # every set large: kept
    masks[1, 5:7, 5:7] = True        # 4 mask pixels, all on the edge band: E+ empty
    masks[2, :, :11] = True          # one column free: E- empty
    masks[3, 2:10, 2:10] = True      # the band reaches the border: E- empty
    masks[4, 4:9, 3:8] = True        # 5x5: E+ = its inner edge ring (16), H+ = its 3x3 core: kept
    sets = contrastmask_key_sets(masks)
    sizes = torch.stack([x.flatten(1).sum(1) for x in sets[2:]])
    drawn = sample_key_sets(sets, 0.3, 5, torch.Generator().manual_seed(0))
    assert drawn.keep.tolist() == (sizes >= 5).all(0).tolist() == [True, False, False, False, True]
    for name in ("easy_pos", "easy_neg", "hard_pos", "hard_neg"):
        assert not getattr(drawn, name)[~drawn.keep].any()
    # a set of exactly 5 is kept, of 4 dropped
    assert sample_key_sets(sets, 0.3, int(sizes[:, 0].min()), None).keep[0]
    assert not sample_key_sets(sets, 0.3, int(sizes[:, 0].min()) + 1, None).keep[0]


# ---------------------------------------------------------------------------------------------
# Settings, registry and bad input
# ---------------------------------------------------------------------------------------------


def test_settings_defaults_names_and_registry():
    s = ContrastMaskSettings()
    assert (s.loss_weight, s.easy_temperature, s.hard_temperature, s.sample_ratio,
            s.min_pixels, s.cam_threshold, s.num_encoder_convs) == (0.1, 0.3, 0.7, 0.3, 5, 0.1, 8)
    assert all(getattr(s, q) for q in QUIRKS) and s.detach_features
    assert s.variant_name() == "contrastmask_w0.1_te0.3_th0.7_s0.3"
    assert ContrastMaskSettings.from_mapping(s.to_mapping()) == s
    variant = ContrastMaskSettings(detach_features=False, ramp_epochs=0, shift_keys=False)
    assert variant.variant_name() == "contrastmask_w0.1_te0.3_th0.7_s0.3_grad_noramp_noshift"
    assert loss_settings("contrastmask", {"sample_ratio": 0.5}).sample_ratio == 0.5
    assert isinstance(build_loss(s, 8), ContrastMaskLoss)
    assert build_loss(ContrastMaskSettings(loss_weight=0), 8) is None


@pytest.mark.parametrize("mapping, error, match", [
    ({"easy_temperature": 0}, ValueError, "easy_temperature"),
    ({"sample_ratio": 1.5}, ValueError, "sample_ratio"),
    ({"min_pixels": 0}, ValueError, "min_pixels"),
    ({"cam_threshold": 0.6}, ValueError, "cam_threshold"),
    ({"shift_keys": 1}, TypeError, "shift_keys"),
    ({"num_encoder_convs": 1.5}, TypeError, "num_encoder_convs"),
    ({"tau": 0.1}, ValueError, "unknown key"),
])
def test_bad_settings_are_one_line(mapping, error, match):
    with pytest.raises(error, match=match) as info:
        ContrastMaskSettings.from_mapping(mapping)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("call, error, match", [
    (lambda m, f, g: m(f, g.to(torch.uint8)), TypeError, "gt_masks must be a bool"),
    (lambda m, f, g: m(f.long(), g), TypeError, "features must be a floating"),
    (lambda m, f, g: m(f, g[:1]), ValueError, "disagree"),
    (lambda m, f, g: m(f[:, :3], g), ValueError, "channels"),
    (lambda m, f, g: m(f, g, torch.zeros(2, 12, 12, dtype=torch.bool)), TypeError, "mask_logits"),
    (lambda m, f, g: m(f, g, torch.zeros(2, 11, 12)), ValueError, "mask_logits"),
    (lambda m, f, g: m(f, g, is_novel=torch.tensor([True, False])), ValueError, "cam"),
    (lambda m, f, g: m(f, g, cam=torch.rand(2, 12, 12),
                       is_novel=torch.tensor([1, 0])), TypeError, "is_novel"),
    (lambda m, f, g: m(f, g, cam=torch.rand(2, 11, 12),
                       is_novel=torch.tensor([True, False])), TypeError, "cam"),
    (lambda m, f, g: m(f[..., :1], g[..., :1]), ValueError, ">= 2"),
])
def test_bad_inputs_are_one_line(call, error, match):
    module = ContrastMaskLoss.from_settings(small_settings(), 4)
    with pytest.raises(error, match=match) as info:
        call(module, torch.randn(2, 4, 12, 12), disk_masks([3, 4]))
    assert "\n" not in str(info.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_loss_does_not_synchronise_a_cuda_device():
    module = ContrastMaskLoss.from_settings(small_settings(), 4).cuda()
    features = torch.randn(3, 4, 12, 12, device="cuda", requires_grad=True)
    masks = disk_masks([3, 4.5, 5]).cuda()
    cam = torch.rand(3, 12, 12, device="cuda")
    novel = torch.tensor([False, True, False], device="cuda")
    generator = torch.Generator(device="cuda").manual_seed(0)
    module(features, masks, cam=cam, is_novel=novel, generator=generator)  # warm-up
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        loss = module(features, masks, cam=cam, is_novel=novel, generator=generator)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    loss.backward()
    assert torch.isfinite(loss)


def test_half_features_give_a_float32_loss():
    module = ContrastMaskLoss.from_settings(small_settings(), 4)
    loss = module(torch.randn(2, 4, 12, 12).bfloat16(), disk_masks([3, 4.5]),
                  generator=torch.Generator().manual_seed(0))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_the_cost_bench_times_both_losses_on_one_batch(tmp_path):
    import json

    from bench.bench_contrastmask_loss import main

    out = tmp_path / "bench.json"
    assert main(["--rois", "3", "--channels", "8", "--size", "12", "--repeats", "1",
                 "--warmup", "0", "--contrastmask", "num_encoder_convs=1", "embed_channels=8",
                 "--out", str(out)]) == 0
    records = json.loads(out.read_text())["records"]
    assert [r["loss"] for r in records] == ["dcl", "contrastmask"]
    assert records[1]["variant"] == "contrastmask_w0.1_te0.3_th0.7_s0.3_enc1_c8_grad"
    assert records[0]["ratio_to_dcl"] == 1.0 and records[1]["median_cpu_ms"] > 0
    with pytest.raises(SystemExit):
        main(["--contrastmask", "tau=1"])
