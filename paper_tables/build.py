"""Assemble every table of the paper: measured cells beside the paper's, with their sources.

Input: the expanded experiment matrix (:mod:`paper_tables.experiments`), the run folders under
``results/{scale}/`` and the paper's numbers (``paper.yaml``). Output: plain data (dicts and
lists, JSON-ready) that the Markdown, LaTeX and HTML renderers format. A cell is the measured
value (from a file a run wrote, named in ``source``), the paper's value, and their difference;
any of them may be None, which the renderers show as a visibly empty cell.

Which file a metric comes from (``{split}`` is val or occ):

==========================  ==========================================================
AP, AP50, AP75, APs/m/l      ``metrics_{split}.json`` ``segm`` (pycocotools, x100); on
                             ``voc`` / ``nonvoc`` the novel categories only (ContrastMask)
AP_box                       ``metrics_{split}.json`` ``bbox`` AP
AP_val (Table 5)             ``metrics_cityscapes.json`` AP (cityscapesScripts) when the
                             run has one, else COCO-style segm AP (the note says which)
per-class AP (Table 5)       ``metrics_cityscapes.json`` per_class, else COCO-style
                             ``metrics_val.json`` per_class
dAP_fFP / dAP_bFP / dAP_FN   ``seg_errors_{split}.json`` delta[type].AP
hours, memory_gib, ...       ``train_cost.json`` (analysis.cost)
mIoU_val (CAC's table)       ``metrics_miou.json`` mIoU (mmseg's IoUMetric, percent)
AP_test, AP_dev, mIoU_test   never measured: test-server results
==========================  ==========================================================
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import yaml

from .experiments import OFFICIAL_BASELINE, ROW_STATUS, Plan, Row

__all__ = ["COLUMN_LABELS", "build_tables", "load_paper", "sweep_points"]

HERE = Path(__file__).parent
STATS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
CITYSCAPES_CLASSES = ("person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")
COLUMN_LABELS = {
    "AP_box": "AP box", "AP": "AP", "AP50": "AP50", "AP75": "AP75", "APs": "APs", "APm": "APm",
    "APl": "APl", "AP_val": "AP val", "AP_test": "AP test", "AP_dev": "AP test-dev",
    "dAP_fFP": "ΔAP fFP", "dAP_bFP": "ΔAP bFP", "dAP_FN": "ΔAP FN",
    "hours": "time (h)", "memory_gib": "memory (GiB)", "seconds_per_iter": "s / iter",
    "iterations": "iterations", "memory_kind": "memory counted as", "device": "device",
    "mIoU_val": "mIoU val", "mIoU_test": "mIoU test (ms)",
}
# Columns measured only (no paper number exists for them).
_COST_EXTRA = ("seconds_per_iter", "iterations", "memory_kind", "device")
MEASURED_ONLY = {"table9": _COST_EXTRA, "same_baseline_cost": _COST_EXTRA}
# Tables whose variants are compared with a baseline row of the same model and split.
GAIN_TABLES = ("table1", "table4", "table5", "table6", "table7", "table8", "table9",
               "same_baseline", "same_baseline_errors", "same_baseline_cost", "cac_cityscapes")
# The same-baseline comparison (issue 16): one Mask R-CNN, several losses, no paper numbers.
SAME_BASELINE = ("same_baseline", "same_baseline_errors", "same_baseline_cost")
MODEL_LABELS = {
    "mask_rcnn": "Mask R-CNN", "mask_rcnn_coco": "Mask R-CNN", "mask_rcnn_coco_init":
    "Mask R-CNN (COCO init)", "mask_rcnn_swin_t": "Mask R-CNN Swin-T",
    "sparseinst": "SparseInst", "refinemask": "RefineMask",
    "contrastmask_x50_voc2nonvoc": "ContrastMask X-50, voc -> nonvoc",
    "contrastmask_x50_nonvoc2voc": "ContrastMask X-50, nonvoc -> voc",
    "contrastmask_x101_voc2nonvoc": "ContrastMask X-101, voc -> nonvoc",
    "contrastmask_x101_nonvoc2voc": "ContrastMask X-101, nonvoc -> voc",
    "hrnet_fcn_40k": "HRNetV2 FCN 40k", "hrnet_fcn_120k": "HRNetV2 FCN 120k",
    "ocrnet_120k": "OCRNet 120k",
}
# Test-server numbers: the paper's only.
NOT_MEASURED = ("AP_test", "AP_dev", "mIoU_test")


def load_paper(path: Path = HERE / "paper.yaml") -> dict:
    """The paper's tables from ``paper.yaml`` (see its header for the format)."""
    with open(path) as f:
        return yaml.safe_load(f)


class _Files:
    """Reads each run file once; a missing file reads as None."""

    def __init__(self, results: Path):
        self.results = Path(results)
        self._cache: dict[Path, Any] = {}

    def get(self, run: str, name: str) -> tuple[Optional[Any], str]:
        path = self.results / run / name
        if path not in self._cache:
            self._cache[path] = json.loads(path.read_text()) if path.is_file() else None
        return self._cache[path], f"{run}/{name}"


def _num(x) -> Optional[float]:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _measure(table: str, row: Row, col: str, files: _Files) -> tuple[Any, Optional[str]]:
    """(value, source 'run/file#key') of one measured cell, or (None, None)."""
    run, split = row.run, row.split
    if run is None or col in NOT_MEASURED:
        return None, None

    def pick(name: str, *keys):
        data, src = files.get(run, name)
        for k in keys:
            if not isinstance(data, Mapping) or k not in data:
                return None, None
            data = data[k]
        return data, f"{src}#{'.'.join(keys)}"

    if col == "AP_val" or col in CITYSCAPES_CLASSES:
        keys = ("AP",) if col == "AP_val" else ("per_class", col)
        value, src = pick("metrics_cityscapes.json", *keys)
        if src is None:
            value, src = pick(f"metrics_{split}.json", *(("segm", "AP") if col == "AP_val" else keys))
        return _num(value), src
    if col in STATS:
        value, src = pick(f"metrics_{split}.json", "segm", col)
        return _num(value), src
    if col == "AP_box":
        value, src = pick(f"metrics_{split}.json", "bbox", "AP")
        return _num(value), src
    if col.startswith("dAP_"):
        value, src = pick(f"seg_errors_{split}.json", "delta", col[4:], "AP")
        return _num(value), src
    if col == "mIoU_val":
        value, src = pick("metrics_miou.json", "mIoU")
        return _num(value), src
    if col == "hours":
        value, src = pick("train_cost.json", "total_seconds")
        return (None if value is None else value / 3600), src
    if col == "memory_gib":
        value, src = pick("train_cost.json", "peak_memory_mib")
        return (None if value is None else value / 1024), src
    if col in ("seconds_per_iter", "iterations", "memory_kind", "device"):
        value, src = pick("train_cost.json", col)
        return value, src
    raise KeyError(f"{table}: no measurement defined for column {col!r}")


def _losses_label(s: Mapping) -> str:
    """`` + DCL (λ 1.2) + ContrastMask loss (0.1; head 8 convs, 256 ch)`` (or `` + CAC loss
    (0.1; τ 0.1, projection 256 ch)``) of a row's settings."""
    parts = []
    if s["dcl"]:
        parts.append(f"DCL (λ {s['loss_weight']:g})")
    cm = s.get("contrastmask")
    if cm is not None:
        parts.append(f"ContrastMask loss ({cm['loss_weight']:g}; head {cm['num_encoder_convs']} "
                     f"conv{'s' if cm['num_encoder_convs'] != 1 else ''}, "
                     f"{cm['embed_channels']} ch)")
    cac = s.get("cac")
    if isinstance(cac, Mapping):  # CAC's RoI loss (`cac: true` is an mmseg config variant)
        parts.append(f"CAC loss ({cac['loss_weight']:g}; τ {cac['temperature']:g}, "
                     f"projection {cac['projection_channels']} ch)")
    return "".join(f" + {p}" for p in parts)


def _row_label(table: str, row: Row) -> str:
    s = row.settings
    if table in SAME_BASELINE:
        return MODEL_LABELS.get(row.model_role, row.model_role) + _losses_label(s)
    if table in ("table1",):
        return f"λ = {s.get('loss_weight', 0):g}"
    if table == "table2":
        return "learnable similarity " + ("✓" if s.get("with_projection", True) else "✗")
    if table == "table3":
        return f"τ = {s['temperature']:g}"
    if table == "table4":
        return f"K = {s.get('num_samples', 0) if s['dcl'] else 0}"
    if table == "supp_unequal":
        k = s["num_samples"]
        return "|A|, |P|, |N| = " + ", ".join(str(s.get(n) or k) for n in
                                             ("num_anchors", "num_positives", "num_negatives"))
    model = MODEL_LABELS.get(row.model_role, row.model_role)
    if s.get("cac"):
        return model + " + CAC"
    if s.get("baseline") == "official":
        return model + " (authors' baseline)"
    label = model + (f" + DCL (λ {s['loss_weight']:g})" if s["dcl"] else "")
    if table == "table6":
        label = ("COCO-OCC: " if row.split == "occ" else "COCO: ") + label
    if table == "table9":
        label = f"{label} [{row.dataset_role}]"
    return label


def _delta(a, b) -> Optional[float]:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a - b
    return None


def sweep_points(rows: list[dict], key: str) -> list[dict]:
    """(setting, measured AP, paper AP) of a sweep table's rows, for the sweep figure.

    The baseline is the sweep's 0 for lambda and K; it has no temperature and is left out.
    """
    out = []
    for r in rows:
        s = r["settings"]
        if s is None or (not s["dcl"] and key == "temperature"):
            continue
        x = s[key] if s["dcl"] else 0
        out.append({"x": x, "measured": r["cells"]["AP"]["measured"],
                    "paper": r["cells"]["AP"]["paper"]})
    return out


def build_tables(plan: Plan, results: Path, paper: Optional[dict] = None,
                 describe_scale: Optional[Callable[[str], list[str]]] = None) -> list[dict]:
    """Every table of ``plan`` with measured, paper and delta cells.

    Args:
        plan: the experiment matrix at the scale (:func:`paper_tables.experiments.expand`).
        results: ``results/{scale}``, holding the run folders.
        paper: ``paper.yaml`` contents (default: the shipped file).
        describe_scale: table id -> note lines on what plays the paper's roles at this scale.

    Returns:
        One dict per table of ``paper.yaml`` that the plan includes, with ``id``, ``title``,
        ``caption``, ``evaluation``, ``columns`` [{key, label, paper}], ``rows`` [{label, run,
        status, status_text, settings, paper_only, cells: {col: {measured, paper, delta,
        source}}}], ``gains`` (DCL minus its baseline, per model and split; for Table 9 the
        relative cost in %), ``notes``, and ``sweep`` for sweep tables.
    """
    paper = paper or load_paper()
    files = _Files(results)
    out = []
    for tid, rows in plan.tables.items():
        if tid not in paper:
            continue
        spec = paper[tid]
        cols = list(spec["columns"]) + list(MEASURED_ONLY.get(tid, ()))
        has_paper = spec.get("paper_numbers", True)
        paper_rows = {(r.get("model"), r.get("variant"), r.get("split", "val")): r
                      for r in spec["rows"] if r.get("model")}
        table_rows, seen = [], set()
        for row in rows:
            key = (row.model_role, row.variant, row.split)
            if key in seen:
                continue
            seen.add(key)
            p = paper_rows.get(key, {})
            cells = {}
            for c in cols:
                m, src = _measure(tid, row, c, files)
                pv = _num(p.get(c)) if has_paper and c not in MEASURED_ONLY.get(tid, ()) else None
                cells[c] = {"measured": m, "paper": pv, "delta": _delta(m, pv), "source": src}
            status = row.status
            if status == "run" and not any(c["source"] for c in cells.values()):
                status = "missing"
            table_rows.append({
                "label": _row_label(tid, row), "run": row.run, "status": status,
                "status_text": ROW_STATUS.get(status, "the run's result files are missing"),
                "settings": row.settings, "model_role": row.model_role, "split": row.split,
                "variant": row.variant, "paper_only": False, "cells": cells,
            })
        for r in spec["rows"]:
            if r.get("model") is None:  # another method: the paper's numbers only
                table_rows.insert(sum(1 for x in table_rows if x["paper_only"]), {
                    "label": r["label"], "run": None, "status": "paper_only",
                    "status_text": "another method, the paper's numbers (not reproduced)",
                    "settings": None, "model_role": None, "split": "val", "variant": None,
                    "paper_only": True,
                    "cells": {c: {"measured": None, "paper": _num(r.get(c)), "delta": None,
                                  "source": None} for c in cols},
                })
        measured_only = MEASURED_ONLY.get(tid, ())
        table = {
            "id": tid, "title": spec["title"], "caption": spec["caption"],
            "evaluation": spec["evaluation"], "paper_numbers": has_paper,
            "method": spec.get("method", "DCL"),
            # paper: the column has the paper's value and Δ beside it; gain: the column is
            # compared with the baseline in `gains`.
            "columns": [{"key": c, "label": COLUMN_LABELS.get(c, c),
                         "paper": has_paper and c not in measured_only,
                         "gain": c not in measured_only} for c in cols],
            "rows": table_rows, "gains": _gains(tid, spec, table_rows, cols),
            "gains_heading": (f"{spec.get('method', 'DCL')} against its baseline" if has_paper else
                              "Each loss against the baseline (no paper numbers exist for this "
                              "comparison)"),
            "notes": _notes(tid, spec, table_rows, describe_scale),
        }
        if spec.get("sweep"):
            table["sweep"] = {**spec["sweep"], "points": sweep_points(table_rows, spec["sweep"]["key"])}
        out.append(table)
    return out


def _gains(tid: str, spec: Mapping, rows: list[dict], cols: list[str]) -> list[dict]:
    """Loss rows minus the baseline row of the same model and split (:data:`GAIN_TABLES`:
    those with a baseline row); for a cost table the relative cost in %. In CAC's table, CAC
    minus each baseline of its model: the matched one and, where it differs, the authors' (whose
    numbers the paper's gain compares)."""
    if tid not in GAIN_TABLES:
        return []
    cost = spec["evaluation"] == "cost"
    baselines = ("baseline", OFFICIAL_BASELINE) if tid == "cac_cityscapes" else ("baseline",)
    pairs = []
    for kind in baselines:
        base = {(r["model_role"], r["split"]): r for r in rows
                if not r["paper_only"] and r["variant"] == kind}
        pairs += [(r, base.get((r["model_role"], r["split"]))) for r in rows
                  if not r["paper_only"] and r["variant"] not in baselines]
    gains = []
    for r, b in pairs:
        if b is None:
            continue
        if r["run"] is None and not spec.get("paper_numbers", True):
            continue  # neither side has a value: no gain row
        if cost:
            # Relative cost, the paper's claim being "10-20% extra training time": measured
            # from s / iter (the same schedule for both), the paper's from its hours.
            cells = {"hours": {"measured": _ratio(r["cells"]["seconds_per_iter"]["measured"],
                                                  b["cells"]["seconds_per_iter"]["measured"]),
                               "paper": _ratio(r["cells"]["hours"]["paper"], b["cells"]["hours"]["paper"])},
                     "memory_gib": {side: _ratio(r["cells"]["memory_gib"][side], b["cells"]["memory_gib"][side])
                                    for side in ("measured", "paper")}}
        else:
            cells = {c: {side: _delta(r["cells"][c][side], b["cells"][c][side])
                         for side in ("measured", "paper")} for c in cols}
        unit = "%" if cost else {"cac_cityscapes": "mIoU"}.get(tid, "AP")
        against = "baseline" if b["variant"] == "baseline" else b["label"]
        gains.append({"label": f"{r['label']} − {against}", "cells": cells, "unit": unit,
                      "run": r["run"],
                      "baseline_run": b["run"], "split": r["split"]})
    return gains


def _ratio(a, b) -> Optional[float]:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b:
        return 100.0 * (a / b - 1.0)
    return None


def _notes(tid, spec, rows, describe_scale) -> list[str]:
    notes = []
    if describe_scale:
        notes += describe_scale(tid)
    skipped = [r["label"] for r in rows if r["status"] == "not_at_scale"]
    if tid in SAME_BASELINE:
        notes.append("The baseline and DCL rows are the runs of Table 1 (the same settings, "
                     "trained once). ContrastMask's loss runs with its features not detached and "
                     "no epoch ramp (config.yaml experiments.same_baseline says why); its "
                     "contrastive head is the official one (8 convs, 256 channels) at paper "
                     "scale and a narrowed one at the embedded scale.")
        if skipped:
            notes.append("Rows of the other scale's head, not run here: " + ", ".join(skipped)
                         + ".")
        skipped = []
    if skipped:
        notes.append("Not run at this scale (fewer sweep points than the paper): "
                     + ", ".join(skipped) + ".")
    if spec["evaluation"] == "cityscapes":
        cs = any((c.get("source") or "").startswith(r["run"] + "/metrics_cityscapes")
                 for r in rows if r["run"] for c in r["cells"].values())
        notes.append("Measured AP: " + ("Cityscapes-style (cityscapesScripts) on val; per-class AP on val."
                                        if cs else "COCO-style (pycocotools segm) on val, not the paper's "
                                        "Cityscapes-style AP: this scale has no Cityscapes data; "
                                        "per-class AP is COCO-style for the classes the data has."))
        notes.append("The paper's per-class columns and AP test are test-set numbers (evaluation "
                     "server); nothing here is measured on the test set.")
    if spec["evaluation"] == "miou":
        notes.append("Measured mIoU: mmseg's IoUMetric over the dataset's classes on val "
                     "(Cityscapes: its 19 trainId classes, whole-image single-scale inference), "
                     "with its image-bootstrap interval. mIoU test (ms) is the evaluation server's multi-scale "
                     "number: not measured.")
        notes.append("Gains: CAC minus the baseline matched to it (its config differs by the "
                     "loss alone) and, where they differ, minus the authors' own baseline, "
                     "which the paper's gain uses (40k: no CE class weights; OCRNet: batch 16).")
    if any(c in ("AP_dev",) for c in spec["columns"]):
        notes.append("AP test-dev is the evaluation server's: not measured.")
    if spec["evaluation"] == "cost":
        kinds = {r["cells"]["memory_kind"]["measured"] for r in rows if r["run"]}
        kinds.discard(None)
        if "cpu_peak_rss" in kinds:
            notes.append("Measured memory on the CPU is the process's peak resident set size "
                         "(getrusage), not the GPU memory the paper reports; on a GPU it is "
                         "torch.cuda.max_memory_allocated, as the paper's.")
        notes.append("Time: the training session's wall time (a resumed run counts its last "
                     "session); s / iter is the median after 5 warm-up iterations. "
                     + ("DCL's extra cost is in % of its baseline's: measured time from s / iter, "
                        "the paper's from its hours." if tid == "table9" else
                        "Each loss's extra cost is in % of the baseline's, time from s / iter."))
    return notes
