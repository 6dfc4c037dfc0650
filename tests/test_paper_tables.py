"""paper_tables: the experiment matrix per scale, measured cells beside the paper's, rendering."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from paper_tables.build import build_tables, load_paper
from dcl_core import ContrastMaskSettings, DCLSettings, format_loss_option, parse_losses
from paper_tables.experiments import (ConfigError, expand, run_loss, run_losses, variant_name,
                                      variant_settings)
from paper_tables.render import EMPTY, fmt, render_comparison, render_latex, render_markdown, render_report

REPO = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())


def test_variant_names_follow_the_settings():
    assert variant_name(variant_settings({"dcl": False})) == "baseline"
    assert variant_name(variant_settings({"dcl": True})) == "dcl_w1.2_t0.07_k32"
    assert variant_name(variant_settings({"dcl": True, "loss_weight": 1.0})) == "dcl_w1_t0.07_k32"
    assert variant_name(variant_settings({"dcl": True, "with_projection": False})).endswith("_noproj")
    # Counts equal to K leave the name alone; a different one names all three.
    assert variant_name(variant_settings({"dcl": True, "num_anchors": 32})) == "dcl_w1.2_t0.07_k32"
    assert variant_name(variant_settings({"dcl": True, "num_negatives": 64})) == \
        "dcl_w1.2_t0.07_k32_a32_p32_n64"
    with pytest.raises(ConfigError, match="loss settings"):
        variant_settings({"dcl": False, "loss_weight": 1.0})


def test_every_paper_row_has_an_experiment_row_at_paper_scale():
    """Each of the paper's measured rows (Tables 1-9) is planned as a run at paper scale."""
    plan = expand(CONFIG, "paper")
    paper = load_paper()
    for tid, spec in paper.items():
        planned = {(r.model_role, r.variant, r.split) for r in plan.tables[tid] if r.run}
        for row in spec["rows"]:
            if row.get("model"):
                assert (row["model"], row["variant"], row.get("split", "val")) in planned, (tid, row)


def test_embedded_scale_runs_fewer_sweep_points_and_shares_runs():
    plan = expand(CONFIG, "embedded")
    t1 = {r.variant: r for r in plan.tables["table1"]}
    assert t1["dcl_w0.4_t0.07_k32"].status == "not_at_scale" and t1["dcl_w0.4_t0.07_k32"].run is None
    assert t1["baseline"].run == "embedded/mask_rcnn_r18_fpn/baseline"
    # The COCO rows of Table 6 are answered by the same Mask R-CNN runs as Table 1 here.
    t6 = {(r.variant, r.split): r.run for r in plan.tables["table6"]}
    assert t6[("baseline", "val")] == t6[("baseline", "occ")] == t1["baseline"].run
    assert t6[("dcl_w0.1_t0.07_k32", "val")] == t1["dcl_w0.1_t0.07_k32"].run
    # Table 5's COCO-pretrained rows have no model at this scale: visibly empty, not run.
    t5 = [r for r in plan.tables["table5"] if r.model_role == "mask_rcnn_coco_init"]
    assert t5 and all(r.status == "no_model" and r.run is None for r in t5)


def test_presets_that_break_the_matrix_are_refused():
    bad = copy.deepcopy(CONFIG)
    bad["presets"]["embedded"]["datasets"]["coco"] = "cocoo"
    with pytest.raises(ConfigError, match="cocoo"):
        expand(bad, "embedded")
    bad = copy.deepcopy(CONFIG)
    bad["presets"]["embedded"]["models"]["sparseinst"]["name"] = "mask_rcnn_r18_fpn"
    with pytest.raises(ConfigError, match="another, different model"):
        expand(bad, "embedded")
    with pytest.raises(ConfigError, match="scale 'huge'"):
        expand(CONFIG, "huge")


def test_the_plan_emits_neutral_loss_settings():
    dcl = variant_settings({"dcl": True, "num_negatives": 64})
    assert run_loss(dcl) == DCLSettings(num_negatives=64)
    assert run_loss(variant_settings({"dcl": False})) is None
    assert run_loss(variant_settings({"dcl": True, "loss_weight": 1})).loss_weight == 1.0
    with pytest.raises(ConfigError, match="num_samples must be >= 1"):
        variant_settings({"dcl": True, "num_samples": 0})


def _write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _fake_results(root: Path, plan) -> None:
    """Result files for every run of the plan, with AP values that identify the run."""
    for i, run in enumerate(sorted(plan.runs)):
        segm = {k: 10.0 + i for k in ("AP", "AP50", "AP75", "APs", "APm", "APl")}
        for split in ("val", "occ", "voc", "nonvoc"):
            _write(root / run / f"metrics_{split}.json",
                   {"segm": segm, "bbox": {"AP": 20.0 + i}, "per_class": {"person": 5.0 + i, "car": None}})
            _write(root / run / f"seg_errors_{split}.json",
                   {"delta": {t: {"AP": 1.0 + i} for t in ("fFP", "bFP", "FN")}})
        _write(root / run / "metrics_miou.json", {"mIoU": 30.0 + i})
        _write(root / run / "train_cost.json",
               {"total_seconds": 3600.0 * (1 + i), "peak_memory_mib": 1024.0 * (1 + i),
                "seconds_per_iter": 1.0 + i, "iterations": 100, "memory_kind": "cpu_peak_rss",
                "device": "cpu (2 cores)"})


def test_tables_put_measured_cells_beside_the_papers_with_sources(tmp_path):
    plan = expand(CONFIG, "embedded")
    _fake_results(tmp_path, plan)
    tables = {t["id"]: t for t in build_tables(plan, tmp_path)}
    assert set(tables) == {f"table{i}" for i in range(1, 10)} | {"supp_unequal", "cac_cityscapes"} | {
        "same_baseline", "same_baseline_errors", "same_baseline_cost", "contrastmask"}
    runs = sorted(plan.runs)

    # ContrastMask: novel-class AP from the run's non-VOC split, beside the README's number.
    cm = tables["contrastmask"]["rows"]
    assert [r["cells"]["AP"]["paper"] for r in cm] == [33.4, 37.6, 35.0, 39.8]
    assert cm[0]["cells"]["AP"]["source"] == f"{cm[0]['run']}/metrics_nonvoc.json#segm.AP"
    assert cm[0]["cells"]["AP"]["measured"] == 10.0 + runs.index(cm[0]["run"])
    assert all(r["run"] is None and r["cells"]["AP"]["measured"] is None for r in cm[1:])

    row = next(r for r in tables["table1"]["rows"] if r["variant"] == "dcl_w1.2_t0.07_k32")
    i = runs.index(row["run"])
    cell = row["cells"]["AP"]
    assert cell["measured"] == 10.0 + i and cell["paper"] == 36.5
    assert cell["delta"] == pytest.approx(10.0 + i - 36.5)
    assert cell["source"] == f"{row['run']}/metrics_val.json#segm.AP"
    assert row["cells"]["AP_box"]["measured"] == 20.0 + i
    skipped = next(r for r in tables["table1"]["rows"] if r["variant"] == "dcl_w0.4_t0.07_k32")
    assert skipped["cells"]["AP"]["measured"] is None and skipped["cells"]["AP"]["paper"] == 35.1

    # Table 5: other methods are the paper's only; at embedded scale AP is COCO-style.
    t5 = tables["table5"]
    other = [r for r in t5["rows"] if r["paper_only"]]
    assert [r["label"] for r in other][:1] == ["PointRend"] and other[0]["cells"]["AP_val"]["paper"] == 35.8
    rm = next(r for r in t5["rows"] if r["model_role"] == "refinemask" and r["variant"] != "baseline")
    assert rm["cells"]["AP_val"]["source"].endswith("metrics_val.json#segm.AP")
    assert rm["cells"]["person"]["measured"] == 5.0 + runs.index(rm["run"])
    assert rm["cells"]["car"]["measured"] is None and rm["cells"]["AP_test"]["measured"] is None
    assert any("COCO-style" in n for n in t5["notes"])

    # Table 6 scores the same runs on val and on the occlusion split.
    occ = next(r for r in tables["table6"]["rows"] if r["split"] == "occ")
    assert occ["cells"]["AP"]["source"].endswith("metrics_occ.json#segm.AP")

    # Table 8 reads the error analysis, Table 9 the training cost; both have DCL-vs-baseline gains.
    t8 = tables["table8"]["rows"]
    assert t8[1]["cells"]["dAP_FN"]["source"].endswith("seg_errors_val.json#delta.FN.AP")
    gain = tables["table8"]["gains"][0]["cells"]["AP"]
    assert gain["paper"] == pytest.approx(36.5 - 32.3)
    t9 = tables["table9"]
    base, dcl = [r for r in t9["rows"] if r["model_role"] == "sparseinst"]
    assert base["cells"]["hours"]["measured"] == pytest.approx(1 + runs.index(base["run"]))
    assert base["cells"]["memory_kind"]["measured"] == "cpu_peak_rss" and base["cells"]["device"]["paper"] is None
    cost = next(g for g in t9["gains"] if g["label"].startswith("SparseInst"))["cells"]["hours"]
    s_base, s_dcl = 1.0 + runs.index(base["run"]), 1.0 + runs.index(dcl["run"])
    assert cost["measured"] == pytest.approx(100 * (s_dcl / s_base - 1))
    assert cost["paper"] == pytest.approx(100 * (40.0 / 33.5 - 1))
    assert any("resident set size" in n for n in t9["notes"])

    # Sweeps for the figure: Table 4's x is K, the baseline at 0.
    xs = [p["x"] for p in tables["table4"]["sweep"]["points"]]
    assert xs == [0, 8, 16, 32, 64, 128]


def test_missing_result_files_leave_cells_empty_and_say_so(tmp_path):
    plan = expand(CONFIG, "embedded")
    tables = {t["id"]: t for t in build_tables(plan, tmp_path)}
    row = tables["table2"]["rows"][0]
    assert row["status"] == "missing" and row["cells"]["AP"]["measured"] is None
    assert row["cells"]["AP"]["paper"] == 35.1


def test_renderers_show_every_cell_and_mark_empty_ones(tmp_path):
    plan = expand(CONFIG, "embedded")
    _fake_results(tmp_path, plan)
    tables = build_tables(plan, tmp_path)
    t1 = next(t for t in tables if t["id"] == "table1")
    md = render_markdown(t1, "embedded")
    lines = [x for x in md.splitlines() if x.startswith("| λ") and "− baseline" not in x]
    assert len(lines) == len(t1["rows"]) and all(x.count("|") == lines[0].count("|") for x in lines)
    assert "| 36.5 |" in md and EMPTY in md
    tex = render_latex(t1, "embedded")
    assert tex.count(r"\\") == len(t1["rows"]) + len(t1["gains"]) + 2 and r"$\lambda$ = 1.2" in tex
    body = "\n".join(x for x in tex.splitlines() if not x.startswith("%"))
    assert "_" not in body.replace(r"\_", "")  # escaped for LaTeX
    png = tmp_path / "x.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    html = render_report(tables, [{"id": "f", "title": "Figure 2: x", "caption": "c", "path": png}],
                         scale="embedded", provenance={"git_revision": "abc", "git_dirty": False,
                                                       "generated": "now", "config_yaml": "a: <b>",
                                                       "runs": []})
    assert html.count("<section") == len(tables) + 2 and "data:image/png;base64," in html
    assert "a: &lt;b&gt;" in html  # the config is escaped, not injected
    assert 'title="embedded/' in html  # each measured cell names its source


def test_fmt():
    assert fmt(None) == EMPTY and fmt(float("nan")) == EMPTY
    assert fmt(36.54) == "36.5" and fmt(1.5, signed=True) == "+1.5"
    assert fmt(-0.01, signed=True) == "+0.0" and fmt(-0.04) == "0.0"
    assert fmt(0.0123, "hours") == "0.012" and fmt(2.0, "seconds_per_iter") == "2.000"
    assert fmt(100, "iterations") == "100" and fmt("cpu_peak_rss") == "cpu_peak_rss"


def test_comparison_of_one_model_lists_each_run():
    md = render_comparison("m", "embedded", {
        "d/m/baseline": ({"segm": {"AP": 10.0}, "bbox": {"AP": 12.0}}, {"seconds_per_iter": 0.5}),
        "d/m/dcl_w1.2_t0.07_k32": ({"segm": {"AP": 11.0}}, None)})
    rows = [x for x in md.splitlines() if x.startswith("| `d/m/")]
    assert len(rows) == 2 and "| 10.0 |" in rows[0] and "0.500" in rows[0]
    assert rows[1].count(EMPTY) == 8  # 5 missing stats, box AP, s / iter, memory: all marked


CM = "contrastmask_w0.1_te0.3_th0.7_s0.3_enc1_c64_grad_noramp"


def test_rows_with_contrastmask_name_and_emit_every_loss():
    cm = {"detach_features": False, "ramp_epochs": 0}
    alone = variant_settings({"dcl": False, "contrastmask": cm})
    both = variant_settings({"dcl": True, "contrastmask": cm})
    assert variant_name(alone) == "contrastmask_w0.1_te0.3_th0.7_s0.3_grad_noramp"
    assert variant_name(both) == "dcl_w1.2_t0.07_k32+contrastmask_w0.1_te0.3_th0.7_s0.3_grad_noramp"
    assert variant_name(variant_settings({"dcl": False, "contrastmask": {}})) == \
        ContrastMaskSettings().variant_name()
    want = (DCLSettings(), ContrastMaskSettings(detach_features=False, ramp_epochs=0))
    assert run_losses(both) == want and run_loss(both) == DCLSettings()
    assert run_losses(alone) == want[1:] and run_loss(alone) is None
    assert run_losses(variant_settings({"dcl": False})) == ()
    # the workflow's --loss words round-trip
    assert parse_losses(format_loss_option(run_losses(both))) == want
    assert format_loss_option(run_losses(variant_settings({"dcl": False}))) == ["none"]
    with pytest.raises(ConfigError, match="contrastmask: unknown key"):
        variant_settings({"dcl": True, "contrastmask": {"tau": 0.1}})
    with pytest.raises(ConfigError, match="mapping"):
        variant_settings({"dcl": True, "contrastmask": True})


def test_same_baseline_reuses_table1_runs_and_adds_three_per_scale():
    for scale, head, cac in (("embedded", CM, "cac_w0.1_t0.1_projection_channels64"),
                             ("paper", "contrastmask_w0.1_te0.3_th0.7_s0.3_grad_noramp",
                              "cac_w0.1_t0.1")):
        plan = expand(CONFIG, scale)
        rows = [r for r in plan.tables["same_baseline"] if r.run]
        t1 = {r.variant: r.run for r in plan.tables["table1"] if r.run}
        assert [r.variant for r in rows] == ["baseline", "dcl_w1.2_t0.07_k32", head,
                                             f"dcl_w1.2_t0.07_k32+{head}", cac]
        assert rows[0].run == t1["baseline"] and rows[1].run == t1["dcl_w1.2_t0.07_k32"]
        for tid in ("same_baseline_errors", "same_baseline_cost"):
            assert [r.run for r in plan.tables[tid] if r.run] == [r.run for r in rows]
        others = {run for t, rs in plan.tables.items() if not t.startswith("same_baseline")
                  for run in (r.run for r in rs) if run}
        assert len({r.run for r in rows} - others) == 3  # ContrastMask, both, CAC: nothing else


def test_same_baseline_tables_have_no_paper_side_and_gains_per_loss(tmp_path):
    plan = expand(CONFIG, "embedded")
    _fake_results(tmp_path, plan)
    tables = {t["id"]: t for t in build_tables(plan, tmp_path)}
    runs = sorted(plan.runs)
    t = tables["same_baseline"]
    assert not t["paper_numbers"] and not any(c["paper"] for c in t["columns"])
    measured = [r for r in t["rows"] if r["run"]]
    assert [r["label"] for r in measured] == [
        "Mask R-CNN", "Mask R-CNN + DCL (λ 1.2)",
        "Mask R-CNN + ContrastMask loss (0.1; head 1 conv, 64 ch)",
        "Mask R-CNN + DCL (λ 1.2) + ContrastMask loss (0.1; head 1 conv, 64 ch)",
        "Mask R-CNN + CAC loss (0.1; τ 0.1, projection 64 ch)"]
    assert all(c["paper"] is None for r in t["rows"] for c in r["cells"].values())
    base = runs.index(measured[0]["run"])
    gains = t["gains"]
    assert [g["label"] for g in gains] == [r["label"] + " − baseline" for r in measured[1:]]
    for g, r in zip(gains, measured[1:]):
        assert g["unit"] == "AP" and g["baseline_run"] == measured[0]["run"]
        assert g["cells"]["AP"]["measured"] == pytest.approx(runs.index(r["run"]) - base)
        assert g["cells"]["AP"]["paper"] is None
    skipped = [r for r in t["rows"] if r["status"] == "not_at_scale"]
    assert len(skipped) == 3 and "8 convs, 256 ch" in skipped[0]["label"]  # paper-scale heads
    assert any("Table 1" in n for n in t["notes"])
    errors = tables["same_baseline_errors"]
    assert errors["gains"][1]["cells"]["dAP_FN"]["measured"] == pytest.approx(
        runs.index(measured[2]["run"]) - base)
    cost = tables["same_baseline_cost"]
    g = cost["gains"][1]["cells"]["hours"]
    assert cost["gains"][1]["unit"] == "%" and g["paper"] is None
    assert g["measured"] == pytest.approx(100 * ((1 + runs.index(measured[2]["run"])) / (1 + base) - 1))
    assert any("extra cost" in n for n in cost["notes"])

    md = render_markdown(t, "embedded")
    assert "no paper has this table" in md and "| paper |" not in md
    assert "Each loss against the baseline" in md
    gain_lines = [x for x in md.splitlines() if "− baseline" in x]
    assert len(gain_lines) == 4 and all(x.count("|") == 6 for x in gain_lines)  # label + 4 cols
    cost_md = render_markdown(cost, "embedded")
    assert sum("− baseline" in x for x in cost_md.splitlines()) == 4
    tex = render_latex(t, "embedded")
    assert "beside the paper" not in tex
    assert tex.count(r"\\") == len(t["rows"]) + len(gains) + 1  # one header row: no paper
    html = render_report([t, cost], [], scale="embedded", provenance={
        "git_revision": "abc", "git_dirty": False, "generated": "now", "config_yaml": "",
        "runs": []})
    assert html.count("− baseline") == 8 and "Each loss against the baseline" in html


def test_cac_table_shows_miou_beside_the_readme_and_both_gains(tmp_path):
    """CAC's table: measured mIoU from metrics_miou.json, the README's numbers on the variants
    whose configs they belong to, test-server cells never measured, and CAC's gain against the
    matched baseline (measured) and against the authors' baseline (the paper's 81.6 - 79.5)."""
    plan = expand(CONFIG, "embedded")
    _fake_results(tmp_path, plan)
    table = {t["id"]: t for t in build_tables(plan, tmp_path)}["cac_cityscapes"]
    assert table["method"] == "CAC" and [c["key"] for c in table["columns"]] == ["mIoU_val", "mIoU_test"]
    rows = {(r["model_role"], r["variant"]): r for r in table["rows"]}
    runs = sorted(plan.runs)
    base, cac = rows[("hrnet_fcn_40k", "baseline")], rows[("hrnet_fcn_40k", "cac")]
    assert base["cells"]["mIoU_val"]["measured"] == 30.0 + runs.index(base["run"])
    assert base["cells"]["mIoU_val"]["source"] == f"{base['run']}/metrics_miou.json#mIoU"
    assert cac["cells"]["mIoU_val"]["paper"] == 81.6 and base["cells"]["mIoU_val"]["paper"] is None
    assert all(r["cells"]["mIoU_test"]["measured"] is None for r in table["rows"])
    official = rows[("hrnet_fcn_40k", "baseline_official")]
    assert official["status"] == "not_at_scale" and official["cells"]["mIoU_val"]["paper"] == 79.5
    assert rows[("ocrnet_120k", "cac")]["status"] == "no_model"
    gains = {g["label"]: g for g in table["gains"]}
    gain = gains["HRNetV2 FCN 40k + CAC − baseline"]
    assert gain["unit"] == "mIoU" and gain["run"] == cac["run"]
    # the authors' 40k baseline does not run at this scale: its gain has the paper's side only
    assert gains["HRNetV2 FCN 40k + CAC − HRNetV2 FCN 40k (authors' baseline)"]["cells"][
        "mIoU_val"]["measured"] is None
    assert gain["cells"]["mIoU_val"]["measured"] == runs.index(cac["run"]) - runs.index(base["run"])
    paper_plan = expand(CONFIG, "paper")
    gains = {g["label"]: g for g in build_tables(paper_plan, tmp_path)[-1]["gains"]}
    assert round(gains["HRNetV2 FCN 40k + CAC − HRNetV2 FCN 40k (authors' baseline)"]
                 ["cells"]["mIoU_val"]["paper"], 6) == 2.1
    assert round(gains["HRNetV2 FCN 120k + CAC − baseline"]["cells"]["mIoU_test"]["paper"], 6) == 1.2
    assert round(gains["OCRNet 120k + CAC − OCRNet 120k (authors' baseline)"]["cells"]["mIoU_val"]
                 ["paper"], 6) == 0.9
