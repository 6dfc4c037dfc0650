"""The paper's numbers as data (``paper.yaml``) and the templates that set measured results
beside them. A cell is a measured value, the paper's number (labelled), or visibly empty."""

from .render import load_paper_numbers, render_dcl_vs_baseline

__all__ = ["load_paper_numbers", "render_dcl_vs_baseline"]
