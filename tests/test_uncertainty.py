"""Intervals, seeds and verdicts in the paper tables (paper_tables.uncertainty, .seeds)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from analysis.bootstrap import (MatchArrays, Resampler, percentile_interval, resample_weights,
                                save_matches)
from analysis.coco_eval import evaluate_segm
from analysis.seg_errors import analyze_errors
from analysis.seg_errors.synthetic import make_synthetic_coco
from paper_tables.build import build_tables
from paper_tables.experiments import ConfigError, expand
from paper_tables.render import fmt_measured, render_markdown
from paper_tables.seeds import check_seeds, seed_option, seed_variant, seeded_runs
from paper_tables.uncertainty import Bootstrap, add_uncertainty, verdict

REPO = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())


def test_verdict_rule():
    assert verdict([0.5, 3.0], 1.0) == "reproduced"          # excludes 0, contains the paper's
    assert verdict([2.0, 3.0], 1.0) == "reproduced"          # lies above the paper's
    assert verdict([-1.0, 0.5], 1.0) == "not reproduced"     # below the paper's, includes 0
    assert verdict([-3.0, -1.0], 1.0) == "not reproduced"    # below the paper's and below 0
    assert verdict([-1.0, 2.0], 1.0) == "inconclusive"       # includes 0 and the paper's
    assert verdict([0.1, 0.5], 1.0) == "inconclusive"        # above 0 but below the paper's
    assert verdict(None, 1.0) is None and verdict([0.1, 0.5], None) is None
    # Delta AP of an error type: lower is better, so a rise is not the paper's reduction.
    assert verdict([9.5, 28.0], -2.4, lower_is_better=True) == "not reproduced"
    assert verdict([-4.0, -1.0], -2.4, lower_is_better=True) == "reproduced"


def test_seeds_keep_the_default_run_and_name_the_others():
    assert check_seeds([0]) == [0] and seed_variant("baseline", 0) == "baseline"
    assert seeded_runs(["d/m/baseline"], [0]) == {}
    assert seeded_runs(["d/m/baseline"], [0, 2]) == {"d/m/baseline_seed2": ("d/m/baseline", 2)}
    assert seed_option(0) == []
    assert seed_option(3) == ["--seed", "3"]
    for bad in ([], [1, 2], [0, 0], [0, -1], "0", [0, True]):
        with pytest.raises(ConfigError):
            check_seeds(bad)


def _write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _run_files(root: Path, run: str, gt: dict, dt: list) -> None:
    """A run folder as the evaluate and seg_errors steps write it, from real predictions."""
    evals = {}
    segm = evaluate_segm(copy.deepcopy(gt), copy.deepcopy(dt), evals=evals)
    _write(root / run / "metrics_val.json", {"segm": segm.stats, "per_class": segm.per_class})
    save_matches(root / run / "matches_val.npz", {"segm": MatchArrays.from_cocoeval(evals["segm"])})
    matches = {}
    errors = analyze_errors(copy.deepcopy(gt), copy.deepcopy(dt), matches=matches)
    _write(root / run / "seg_errors_val.json", errors)
    save_matches(root / run / "seg_errors_matches_val.npz", matches)


def test_tables_get_intervals_seeds_and_verdicts(tmp_path):
    plan = expand(CONFIG, "embedded")
    t8 = [r for r in plan.tables["table8"] if r.run]
    base_run, dcl_run = t8[0].run, t8[1].run
    gt, dt = make_synthetic_coco(12, seed=0, n_categories=3, gts_per_image=4, dets_per_image=12,
                                 sizes=((120, 160),), radius=(4.0, 50.0))
    _, dt_b = make_synthetic_coco(12, seed=0, n_categories=3, gts_per_image=4,
                                  dets_per_image=12, sizes=((120, 160),), radius=(4.0, 50.0),
                                  true_fraction=0.5)
    _run_files(tmp_path, dcl_run, gt, dt)
    _run_files(tmp_path, base_run, gt, dt_b)
    # A second seed of both runs: metrics only (the spread needs no matching).
    for run, ap in ((base_run, 11.0), (dcl_run, 19.0)):
        m = json.loads((tmp_path / run / "metrics_val.json").read_text())
        m["segm"]["AP"] = ap
        _write(tmp_path / seed_variant(run, 1) / "metrics_val.json", m)
    tables = build_tables(plan, tmp_path)
    add_uncertainty(tables, Bootstrap(tmp_path, resamples=200, seed=0),
                    seed_runs=seeded_runs(plan.runs, [0, 1]), scale="embedded")
    t = next(t for t in tables if t["id"] == "table8")
    base = next(r for r in t["rows"] if r["run"] == base_run)
    dcl = next(r for r in t["rows"] if r["run"] == dcl_run)

    # A cell's interval is the percentile interval of its resampled values.
    from analysis.bootstrap import load_matches
    w = resample_weights(12, 200, seed=0)
    s_dcl = Resampler(load_matches(tmp_path / dcl_run / "matches_val.npz")["segm"]).stats(w)[0]
    s_base = Resampler(load_matches(tmp_path / base_run / "matches_val.npz")["segm"]).stats(w)[0]
    np.testing.assert_allclose(dcl["cells"]["AP"]["ci95"], percentile_interval(s_dcl)[0])
    lo, hi = dcl["cells"]["AP"]["ci95"]
    assert lo < hi and lo - 10 < dcl["cells"]["AP"]["measured"] < hi + 10
    assert dcl["cells"]["dAP_FN"]["ci95"] is not None       # the error analysis' Delta AP

    # The gain is paired: the interval of the per-resample differences, not of two intervals.
    gain = t["gains"][0]["cells"]["AP"]
    np.testing.assert_allclose(gain["ci95"], percentile_interval(s_dcl - s_base)[0])
    assert gain["verdict"] == verdict(gain["ci95"], gain["paper"])
    fn = t["gains"][0]["cells"]["dAP_FN"]
    assert fn["verdict"] == verdict(fn["ci95"], fn["paper"], lower_is_better=True)
    assert gain["measured"] == pytest.approx(dcl["cells"]["AP"]["measured"]
                                             - base["cells"]["AP"]["measured"])

    # Seeds: the seed-0 value and the seed-1 value.
    seeds = dcl["cells"]["AP"]["seeds"]
    assert seeds["n"] == 2 and seeds["mean"] == pytest.approx((dcl["cells"]["AP"]["measured"] + 19) / 2)
    assert gain["seeds"]["n"] == 2
    assert "seeds" not in dcl["cells"]["dAP_FN"]             # the seed-1 run has no error analysis

    from paper_tables.figures import plot_gains
    assert plot_gains(tables, tmp_path / "g.png", "gains_errors", "embedded") == 4  # AP + 3 dAP
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
    assert plot_gains(tables, tmp_path / "m.png", "gains_models", "embedded") > 0  # paper only

    md = render_markdown(t, "embedded")
    assert f"[{lo:.1f}, {hi:.1f}]" in md and gain["verdict"] in md
    assert any("inconclusive" in n and "expected" in n for n in t["notes"])
    assert any(n.startswith("Verdict of a DCL-minus-baseline gain") for n in t["notes"])


def test_fmt_measured():
    assert fmt_measured({"measured": 15.14, "ci95": [13.2, 17.06]}) == "15.1 [13.2, 17.1]"
    assert fmt_measured({"measured": None, "ci95": None}) == "–"
    assert fmt_measured({"measured": 1.2, "ci95": [-0.5, 2.9], "verdict": "inconclusive"},
                        "AP", True) == "+1.2 [-0.5, +2.9] inconclusive"
    assert fmt_measured({"measured": 15.0, "seeds": {"n": 3, "mean": 14.8, "std": 0.6}}) == \
        "15.0; seeds 14.8 ± 0.6 (n = 3)"


def test_resampled_files_are_what_the_tables_read(tmp_path):
    """analysis.resample writes a run's resampled stats once; the tables read them when made
    with the same resamples and seed, and resample the matching themselves otherwise."""
    from analysis.resample import load_resampled, main

    gt, dt = make_synthetic_coco(6, seed=1, n_categories=2, gts_per_image=3, dets_per_image=6,
                                 sizes=((96, 128),), radius=(4.0, 40.0))
    _run_files(tmp_path, "d/m/v", gt, dt)
    folder = tmp_path / "d/m/v"
    assert main([str(folder / "matches_val.npz"), "-o",
                 str(folder / "resampled_matches_val.npz"), "--resamples", "40"]) == 0
    data, b, seed = load_resampled(folder / "resampled_matches_val.npz")
    assert (b, seed) == (40, 0) and data["segm"]["stats"].shape == (40, 12)
    source = "d/m/v/metrics_val.json#segm.AP"
    ids, values = Bootstrap(tmp_path, resamples=40).samples(source)
    np.testing.assert_array_equal(values, data["segm"]["stats"][:, 0])
    ids, per_class = Bootstrap(tmp_path, resamples=40).samples(
        "d/m/v/metrics_val.json#per_class.class2")
    np.testing.assert_array_equal(per_class, data["segm"]["per_class"][:, 1])
    assert Bootstrap(tmp_path, resamples=40).samples("d/m/v/metrics_val.json#per_class.x") is None
    assert Bootstrap(tmp_path).samples("d/m/v/metrics_cityscapes.json#AP") is None
    # Another resample count: computed from the matching, not read from the stale file.
    ids, other = Bootstrap(tmp_path, resamples=30).samples(source)
    assert other.shape == (30,)
    assert main([str(folder / "missing.npz"), "-o", str(folder / "x.npz")]) == 1
