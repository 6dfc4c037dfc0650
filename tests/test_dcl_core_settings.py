"""dcl_core's loss settings, the registry of losses and the neutral ``--loss`` option."""

import pytest
import torch

from dcl_core import (LOSSES, DCLSettings, DenseContrastiveLoss, build_loss, format_loss_option,
                      loss_settings, parse_loss_option)


def test_defaults_are_the_authors_and_name_the_run_folder():
    s = DCLSettings()
    assert (s.loss_weight, s.temperature, s.num_samples, s.with_projection, s.max_rois,
            s.roi_selection) == (1.2, 0.07, 32, True, 100, "first")
    assert s.variant_name() == "dcl_w1.2_t0.07_k32"
    assert DCLSettings(loss_weight=1).variant_name() == "dcl_w1_t0.07_k32"
    assert DCLSettings(with_projection=False).variant_name().endswith("_noproj")
    assert DCLSettings(num_anchors=32).variant_name() == "dcl_w1.2_t0.07_k32"
    assert DCLSettings(num_negatives=64).variant_name() == "dcl_w1.2_t0.07_k32_a32_p32_n64"
    assert DCLSettings(max_rois=None, roi_selection="random").variant_name() == \
        "dcl_w1.2_t0.07_k32_roisall_random"


def test_from_mapping_rejects_unknown_keys_and_bad_values_in_one_line():
    assert DCLSettings.from_mapping({"loss_weight": 0.1}) == DCLSettings(loss_weight=0.1)
    with pytest.raises(ValueError, match=r"^unknown key\(s\) \['weight'\]; known: \["):
        DCLSettings.from_mapping({"weight": 1.0})
    for bad, exc in (({"num_samples": 0}, ValueError), ({"temperature": 0.0}, ValueError),
                     ({"num_samples": 2.0}, TypeError), ({"with_projection": 1}, TypeError),
                     ({"roi_selection": "last"}, ValueError), ({"max_rois": True}, TypeError)):
        with pytest.raises(exc, match=next(iter(bad))):
            DCLSettings.from_mapping(bad)


def test_settings_normalise_numbers_and_are_frozen():
    s = DCLSettings(loss_weight=1, temperature=1)
    assert type(s.loss_weight) is float and type(s.temperature) is float
    with pytest.raises(AttributeError):
        s.loss_weight = 2.0  # type: ignore[misc]
    assert s.counts == (32, 32, 32) and DCLSettings(num_positives=8).counts == (32, 8, 32)
    assert not DCLSettings(loss_weight=0.0).enabled and DCLSettings().enabled


def test_module_from_settings_equals_the_module_from_arguments():
    s = DCLSettings(loss_weight=0.5, temperature=0.2, num_samples=4, num_negatives=6)
    torch.manual_seed(0)
    a = DenseContrastiveLoss.from_settings(s, 8)
    torch.manual_seed(0)
    b = DenseContrastiveLoss(8, num_samples=4, temperature=0.2, loss_weight=0.5, num_negatives=6)
    assert a.extra_repr() == b.extra_repr()
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert build_loss(DCLSettings(loss_weight=0.0), 8) is None
    assert isinstance(build_loss(s, 8), DenseContrastiveLoss)
    with pytest.raises(TypeError, match="DCLSettings"):
        DenseContrastiveLoss.from_settings({"loss_weight": 1.0}, 8)


def test_loss_option_round_trips_and_refuses_bad_words():
    assert {"dcl", "cac"} <= set(LOSSES)
    for s in (DCLSettings(), DCLSettings(loss_weight=0.1, num_negatives=64, max_rois=None,
                                         roi_selection="random", with_projection=False)):
        assert parse_loss_option(format_loss_option(s)) == s
    assert format_loss_option(DCLSettings(loss_weight=1)) == [
        "dcl", "loss_weight=1.0", "temperature=0.07", "num_samples=32", "with_projection=True",
        "max_rois=100", "roi_selection=first"]
    assert parse_loss_option(["none"]) is None and format_loss_option(None) == ["none"]
    assert parse_loss_option(["dcl"]) == loss_settings("dcl") == DCLSettings()
    for words, message in ((["dcl", "loss_weight"], "KEY=VALUE"), (["supcon"], "unknown loss"),
                           (["none", "loss_weight=1"], "no settings"), ([], "loss name"),
                           (["dcl", "k=1"], "unknown key"),
                           (["dcl", "num_samples=1", "num_samples=2"], "twice")):
        with pytest.raises(ValueError, match=message):
            parse_loss_option(words)
