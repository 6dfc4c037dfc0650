"""Render the tables of :func:`paper_tables.build.build_tables` as Markdown, LaTeX and HTML.

Formatting only: every number comes from the table data; a None is a visibly empty cell
(:data:`EMPTY`). Templates are jinja2 files in ``templates/``.
"""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import jinja2

__all__ = ["EMPTY", "fmt", "fmt_measured", "render_comparison", "render_latex", "render_markdown", "render_report"]

HERE = Path(__file__).parent
EMPTY = "–"  # a visibly empty cell: no run, no paper number, or not measurable
DECIMALS = {"seconds_per_iter": 3, "memory_gib": 2}


def fmt(value: Any, column: str = "", signed: bool = False) -> str:
    """A cell as text: numbers with one decimal like the paper (more where a column needs
    them: s / iter 3, GiB 2, hours below 1 with 3), ints as they are, None/NaN as EMPTY."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return EMPTY
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) and not signed:
        return str(value)
    decimals = DECIMALS.get(column, 3 if column == "hours" and abs(value) < 1 else 1)
    value = round(value, decimals) + 0.0  # no "-0.0": a difference that rounds to zero is zero
    return f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"


def fmt_measured(cell: Mapping, column: str = "", signed: bool = False) -> str:
    """A measured cell with its uncertainty: ``value [lo, hi]`` (95% bootstrap interval, see
    :mod:`paper_tables.uncertainty`), then ``seeds mean ± std (n)`` where seeds ran and the
    verdict of a gain; just the value where it has neither."""
    text = fmt(cell.get("measured"), column, signed)
    ci = cell.get("ci95")
    if ci is not None and cell.get("measured") is not None:
        text += f" [{fmt(ci[0], column, signed)}, {fmt(ci[1], column, signed)}]"
    seeds = cell.get("seeds")
    if seeds:
        text += (f"; seeds {fmt(seeds['mean'], column, signed)} ± {fmt(seeds['std'], column)}"
                 f" (n = {seeds['n']})")
    if cell.get("verdict"):
        text += f" {cell['verdict']}"
    return text


_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
                  "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "\\": r"\textbackslash{}", "λ": r"$\lambda$", "τ": r"$\tau$",
                  "Δ": r"$\Delta$", "−": "--", "✓": r"\checkmark", "✗": r"$\times$",
                  "–": "--"}


def latex_escape(text: Any) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def _env(autoescape: bool = False) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=autoescape,
    )
    env.filters["fmt"] = fmt
    env.filters["measured"] = fmt_measured
    env.filters["tex"] = latex_escape
    env.filters["plain"] = lambda text: str(text).replace("`", "")  # Markdown code marks
    return env


def render_markdown(table: Mapping, scale: str) -> str:
    """One table as GitHub Markdown: per metric the measured value, the paper's and their Δ."""
    return _env().get_template("table.md.j2").render(t=table, scale=scale, empty=EMPTY)


def render_latex(table: Mapping, scale: str) -> str:
    """One table as a LaTeX ``table`` (booktabs) with the same cells as the Markdown."""
    return _env().get_template("table.tex.j2").render(t=table, scale=scale, empty=EMPTY)


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def render_report(tables: Iterable[Mapping], figures: Iterable[Mapping], *, scale: str,
                  provenance: Mapping[str, Any]) -> str:
    """The HTML report: every table and figure, which run fed each cell, config and revision.

    Args:
        tables: from :func:`paper_tables.build.build_tables`.
        figures: [{"id", "title", "caption", "path" (a PNG, embedded in the page)}].
        scale: the preset's name.
        provenance: {"git_revision", "git_dirty", "generated", "config_yaml", "runs":
            [{"run", "config", "train_cost"}]}.
    """
    figs = [{**f, "src": _data_uri(f["path"])} for f in figures]
    return _env(autoescape=True).get_template("report.html.j2").render(
        tables=list(tables), figures=figs, scale=scale, p=provenance, empty=EMPTY)


def render_comparison(model: str, scale: str, runs: Mapping[str, tuple[Mapping, Optional[Mapping]]]) -> str:
    """Markdown: one model's runs at a scale side by side (segm AP stats, box AP, cost).

    Args:
        runs: run name -> (``metrics_val.json`` contents, ``train_cost.json`` contents or None).
    """
    stats = ("AP", "AP50", "AP75", "APs", "APm", "APl")
    lines = [f"# `{model}` at scale `{scale}`: with and without DCL", "",
             "| run | " + " | ".join(stats) + " | AP box | s / iter | peak memory (MiB) |",
             "|---|" + "---:|" * (len(stats) + 3)]
    for run, (metrics, cost) in runs.items():
        cost = cost or {}
        cells = [fmt(metrics["segm"].get(s)) for s in stats]
        cells += [fmt(metrics.get("bbox", {}).get("AP")),
                  fmt(cost.get("seconds_per_iter"), "seconds_per_iter"),
                  fmt(cost.get("peak_memory_mib"))]
        lines.append(f"| `{run}` | " + " | ".join(cells) + " |")
    lines += ["", "Mask AP (COCO-style, pycocotools segm, x100) on the val split (a run marked "
              "[occ] on val's occlusion subset, [voc] / [nonvoc] on val's VOC / non-VOC "
              "categories only); memory is "
              "`memory_kind` of train_cost.json (CPU peak RSS or CUDA max allocated).", ""]
    return "\n".join(lines)
