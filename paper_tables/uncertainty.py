"""Intervals, seed spread and a verdict for the tables of :mod:`paper_tables.build`.

For every measured AP cell (segm stats, box AP, COCO-style per-class AP, the error analysis'
Delta AP) a 95% percentile interval from the image bootstrap (:mod:`analysis.bootstrap`), read
from the per-image matchings the evaluate and seg_errors steps keep beside their results
(``matches_{split}.npz``, ``seg_errors_matches_{split}.npz``; resampled per run by the
``resample`` rule into ``resampled_*.npz``). Every DCL-minus-baseline gain
gets the interval of the paired bootstrap (the same resampled images for both runs) and a
verdict against the paper's gain (:data:`VERDICT_RULE`). Where ``seeds`` ran more than one
seed, cells and gains also get ``seeds: {n, mean, std}`` over the seeds' values.

mIoU (the mmseg runs' ``metrics_miou.json``) is bootstrapped from the per-image pixel counts
beside it (``metrics_miou_areas.npz``; :mod:`analysis.miou`), and CAC's gains alike.

Not bootstrapped: Cityscapes-style AP from cityscapesScripts (``metrics_cityscapes.json``;
its matching is not kept), training cost (Table 9). Their ``ci95`` is None.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

from analysis.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED, METHODS, interval, load_matches
from analysis.miou import resampled_miou
from analysis.resample import load_resampled, resample_matches
from analysis.coco_eval import STAT_NAMES

__all__ = ["LOWER_IS_BETTER", "VERDICT_RULE", "Bootstrap", "add_uncertainty", "verdict"]

VERDICT_RULE = (
    "Verdict of a DCL-minus-baseline gain, from the 95% interval [lo, hi] of our gain (paired "
    "image bootstrap) and the paper's gain g: reproduced if the interval excludes 0 and "
    "contains g or lies above it (lo > 0 and lo <= g, or lo > g); not reproduced if it lies "
    "below g and includes 0 or lies below 0 (hi < g and lo <= 0); inconclusive otherwise. "
    "For the error analysis' Delta AP columns, where lower is better, the rule reads the "
    "gains with their sign flipped (a reduction is the improvement).")
#: Columns where lower is better: their gains are judged with the sign flipped.
LOWER_IS_BETTER = ("dAP_fFP", "dAP_bFP", "dAP_FN")
VERDICTS = ("reproduced", "not reproduced", "inconclusive")


def verdict(ci: Optional[list], paper_gain: Optional[float],
            lower_is_better: bool = False) -> Optional[str]:
    """One of :data:`VERDICTS` by :data:`VERDICT_RULE`; None without an interval or a paper gain.

    The paper's gain is taken as exact (its own seed noise is unknown). With
    ``lower_is_better`` the interval and the paper's gain are negated first.
    """
    if ci is None or paper_gain is None:
        return None
    lo, hi = ci
    if lower_is_better:
        lo, hi, paper_gain = -hi, -lo, -paper_gain
    if lo > 0 and (lo <= paper_gain <= hi or lo > paper_gain):
        return "reproduced"
    if hi < paper_gain and lo <= 0:
        return "not reproduced"
    return "inconclusive"


def _parse_source(source: str) -> tuple[str, str, tuple[str, ...]]:
    """``run/file.json#a.b`` -> (run, file.json, (a, b))."""
    path, _, keys = source.partition("#")
    run, _, name = path.rpartition("/")
    return run, name, tuple(keys.split(".")) if keys else ()


class Bootstrap:
    """Resampled values of measured cells, cached per run file.

    Reads a run's ``resampled_{matching}.npz`` (the workflow's ``resample`` rule,
    :mod:`analysis.resample`) when it was made with the same resamples and seed, else
    resamples the matching ``{matching}.npz`` itself.

    Args:
        results: ``results/{scale}``, holding the run folders.
        resamples, seed: of :func:`analysis.bootstrap.resample_weights`; every run on a split
            with the same images gets the same resamples, so differences are paired.
        method: ``percentile`` (default, the 2.5th and 97.5th percentiles) or ``basic``
            (bias-corrected; see :data:`analysis.bootstrap.METHODS`).
    """

    def __init__(self, results: Path, resamples: int = DEFAULT_RESAMPLES,
                 seed: int = DEFAULT_SEED, method: str = METHODS[0]):
        if method not in METHODS:
            raise ValueError(f"bootstrap method must be one of {METHODS}, got {method!r}")
        self.results = Path(results)
        self.resamples, self.seed, self.method = int(resamples), int(seed), method
        self._cache: dict[tuple, Optional[dict]] = {}
        self._images: set[int] = set()

    @property
    def image_counts(self) -> list[int]:
        """The numbers of evaluation images of the matchings read so far."""
        return sorted(self._images)

    def _resampled(self, run: str, matching: str) -> Optional[dict]:
        """{name: (image_ids, stats (B, 12), per-class (B, K), category names)} of one
        matching file (``matches_val``, ``seg_errors_matches_occ``, ...), or None."""
        key = (run, matching)
        if key not in self._cache:
            folder = self.results / run
            data = None
            if (folder / f"resampled_{matching}.npz").is_file():
                data, b, seed = load_resampled(folder / f"resampled_{matching}.npz")
                if (b, seed) != (self.resamples, self.seed):
                    data = None
            if data is None and (folder / f"{matching}.npz").is_file():
                data = resample_matches(load_matches(folder / f"{matching}.npz"),
                                        self.resamples, self.seed)
            out = None
            if data is not None:
                out = {n: (d["image_ids"], d["stats"], d["per_class"], d["category_names"])
                       for n, d in data.items()}
                self._images |= {len(d["image_ids"]) for d in data.values()}
            self._cache[key] = out
        return self._cache[key]

    def samples(self, source: Optional[str]) -> Optional[tuple[np.ndarray, np.ndarray]]:
        """(image ids, ``(B,)`` resampled values x100) of the cell read from ``source``
        (``run/file#keys`` as :func:`paper_tables.build.build_tables` names it), or None if
        the cell is not bootstrapped or its matching file is missing."""
        if not source:
            return None
        run, name, keys = _parse_source(source)
        if name == "metrics_miou.json" and keys == ("mIoU",):
            areas = self.results / run / "metrics_miou_areas.npz"
            if (run, name) not in self._cache:
                self._cache[(run, name)] = (resampled_miou(areas, self.resamples, self.seed)
                                            if areas.is_file() else None)
                if self._cache[(run, name)] is not None:
                    self._images.add(len(self._cache[(run, name)][0]))
            return self._cache[(run, name)]
        if name.startswith("metrics_") and name != "metrics_cityscapes.json" and len(keys) == 2:
            data = self._resampled(run, "matches_" + name[len("metrics_"):-5])
            if data is None:
                return None
            if keys[0] in ("segm", "bbox") and keys[0] in data and keys[1] in STAT_NAMES:
                ids, stats, _, _ = data[keys[0]]
                return ids, stats[:, STAT_NAMES.index(keys[1])]
            if keys[0] == "per_class" and "segm" in data:
                ids, _, per_class, names = data["segm"]
                if keys[1] in names:
                    return ids, per_class[:, names.index(keys[1])]
            return None
        if name.startswith("seg_errors_") and len(keys) == 3 and keys[0] == "delta" \
                and keys[2] in STAT_NAMES:
            data = self._resampled(run, "seg_errors_matches_" + name[len("seg_errors_"):-5])
            if data is None or keys[1] not in data or "baseline" not in data:
                return None
            j = STAT_NAMES.index(keys[2])
            ids, fixed, _, _ = data[keys[1]]
            return ids, fixed[:, j] - data["baseline"][1][:, j]
        return None


def _interval(values: Optional[np.ndarray], estimate, method: str) -> Optional[list]:
    if values is None or (method != "percentile" and estimate is None):
        return None
    ci = interval(values[:, None], None if estimate is None else [estimate], method)[0]
    return None if np.isnan(ci).any() else [float(ci[0]), float(ci[1])]


def _read(results: Path, source: str, run: str, cache: dict):
    """The value at ``source``'s file and keys, read from ``run``'s folder instead."""
    _, name, keys = _parse_source(source)
    path = results / run / name
    if path not in cache:
        cache[path] = json.loads(path.read_text()) if path.is_file() else None
    data = cache[path]
    for k in keys:
        if not isinstance(data, Mapping) or k not in data:
            return None
        data = data[k]
    if isinstance(data, bool) or not isinstance(data, (int, float)) or not math.isfinite(data):
        return None
    return float(data)


def _spread(values: list) -> Optional[dict]:
    values = [v for v in values if v is not None]
    if len(values) < 2:
        return None
    return {"n": len(values), "mean": float(np.mean(values)), "std": float(np.std(values, ddof=1))}


def add_uncertainty(tables: list[dict], boot: Bootstrap,
                    seed_runs: Optional[Mapping[str, tuple[str, int]]] = None,
                    scale: Optional[str] = None) -> list[dict]:
    """Add ``ci95`` (and ``seeds`` where other seeds ran) to every measured cell and
    ``ci95``/``verdict`` (and ``seeds``) to every AP gain of ``tables``, in place.

    Args:
        tables: from :func:`paper_tables.build.build_tables`.
        boot: the bootstrap over the run folders.
        seed_runs: ``{seeded run: (run, seed)}`` (:func:`paper_tables.seeds.seeded_runs`).
        scale: the preset's name, for the notes.

    Returns:
        ``tables``.
    """
    others: dict[str, dict[int, str]] = {}   # run -> {seed: seeded run}
    for s_run, (run, seed) in (seed_runs or {}).items():
        others.setdefault(run, {})[seed] = s_run
    cache: dict = {}
    for t in tables:
        rows = {}
        any_ci = False
        for r in t["rows"]:
            if r["paper_only"] or not r["run"]:
                continue
            rows[(r["run"], r["split"])] = r
            for cell in r["cells"].values():
                s = boot.samples(cell.get("source"))
                cell["ci95"] = _interval(None if s is None else s[1], cell["measured"],
                                         boot.method)
                any_ci |= cell["ci95"] is not None
                if cell.get("source") and others.get(r["run"]):
                    spread = _spread([cell["measured"]] + [
                        _read(boot.results, cell["source"], o, cache)
                        for o in others[r["run"]].values()])
                    if spread:
                        cell["seeds"] = spread
        for g in t["gains"]:
            if g["unit"] not in ("AP", "mIoU"):
                continue
            dcl, base = rows.get((g["run"], g["split"])), rows.get((g["baseline_run"], g["split"]))
            for col, cell in g["cells"].items():
                if dcl is None or base is None:
                    cell["ci95"], cell["verdict"] = None, None
                    continue
                a = boot.samples(dcl["cells"][col].get("source"))
                b = boot.samples(base["cells"][col].get("source"))
                paired = (a is not None and b is not None and np.array_equal(a[0], b[0]))
                cell["ci95"] = (_interval(a[1] - b[1], cell["measured"], boot.method)
                                if paired else None)
                cell["verdict"] = verdict(cell["ci95"], cell["paper"], col in LOWER_IS_BETTER)
                src_a, src_b = dcl["cells"][col].get("source"), base["cells"][col].get("source")
                seeds_a, seeds_b = others.get(g["run"], {}), others.get(g["baseline_run"], {})
                if src_a and src_b and set(seeds_a) & set(seeds_b):
                    values = [cell["measured"]]
                    for seed in sorted(set(seeds_a) & set(seeds_b)):
                        va = _read(boot.results, src_a, seeds_a[seed], cache)
                        vb = _read(boot.results, src_b, seeds_b[seed], cache)
                        values.append(None if va is None or vb is None else va - vb)
                    spread = _spread(values)
                    if spread:
                        cell["seeds"] = spread
        if any_ci:
            t["notes"].append(
                f"[lo, hi]: 95% {boot.method} interval of the image bootstrap "
                f"({boot.resamples} resamples of the evaluation images with replacement, seed "
                f"{boot.seed}); a gain's interval is paired (the same resampled images for DCL "
                "and its baseline). It covers the evaluation images only, not training noise: "
                "that is what the seeds' mean ± std is for, where seeds ran."
                + (" AP is not a mean over images, so its resampled values need not centre "
                   "on the measured AP (on COCO-like synthetic data they sit above it: the "
                   "precision envelope takes maxima over a noisier curve) and an AP cell's "
                   "percentile interval can even exclude its own value; paired gains are "
                   "nearly free of this bias (config bootstrap.method: basic corrects it)."
                   if boot.method == "percentile" else ""))
            if t["gains"] and any(c.get("verdict") for g in t["gains"] for c in g["cells"].values()):
                t["notes"].append(VERDICT_RULE)
            if scale in ("embedded", "smoke"):
                sizes = " or ".join(str(n) for n in boot.image_counts)
                t["notes"].append(
                    f"At scale `{scale}` the intervals rest on {sizes} evaluation images, so "
                    "they are several AP wide and 'inconclusive' is the expected verdict for "
                    "most gains: the numbers check the pipeline, not the paper's claims.")
    return tables
