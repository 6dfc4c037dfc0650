"""Render measured runs beside the paper's numbers (Markdown, via jinja2 templates)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Optional

import jinja2
import yaml

HERE = Path(__file__).parent
EMPTY = "–"  # a visibly empty cell: no run or no paper number


def load_paper_numbers(path: Path = HERE / "paper.yaml") -> dict:
    """The paper's tables as ``{table: {caption, dataset, model, evaluation, rows: {run: {...}}}}``."""
    with open(path) as f:
        return yaml.safe_load(f)


def fmt(value: Optional[float], signed: bool = False) -> str:
    """One decimal like the paper; None/NaN -> the empty mark."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return EMPTY
    return f"{value:+.1f}" if signed else f"{value:.1f}"


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = fmt
    return env


def _diff(a: Mapping, b: Mapping, key: str) -> Optional[float]:
    if a.get(key) is None or b.get(key) is None:
        return None
    return a[key] - b[key]


def render_dcl_vs_baseline(
    measured: Mapping[str, Optional[Mapping[str, float]]],
    *,
    baseline: str,
    dcl: str,
    setting: str,
    paper_table: str = "table1",
    metrics: tuple[str, ...] = ("AP", "AP50", "AP75"),
    paper: Optional[dict] = None,
) -> str:
    """Markdown table: measured segm AP of baseline and DCL beside the paper's, and the gains.

    Args:
        measured: run name -> segm stats x100 (``analysis.coco_eval.STAT_NAMES`` keys), or None
            for a run that has not happened (its cells are left visibly empty).
        baseline, dcl: the run names (variant names, e.g. ``baseline``, ``dcl_w1.2_t0.07_k32``);
            the paper's rows are looked up under the same names.
        setting: one line saying what was measured (dataset, model, schedule).
        paper_table: key of ``paper.yaml`` holding the paper's corresponding rows.
    """
    paper = paper or load_paper_numbers()
    table = paper[paper_table]
    rows = []
    for label, run in (("Mask R-CNN", baseline), ("Mask R-CNN + DCL", dcl)):
        rows.append({"label": label, "run": run, "measured": measured.get(run) or {},
                     "paper": table["rows"].get(run, {})})
    gain = {
        "label": "DCL − baseline",
        "measured": {m: _diff(rows[1]["measured"], rows[0]["measured"], m) for m in metrics},
        "paper": {m: _diff(rows[1]["paper"], rows[0]["paper"], m) for m in metrics},
    }
    return _env().get_template("dcl_vs_baseline.md.j2").render(
        rows=rows, gain=gain, metrics=metrics, setting=setting, table=table,
        paper_table=paper_table.replace("table", "Table "), empty=EMPTY,
    )
