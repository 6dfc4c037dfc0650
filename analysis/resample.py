"""``python -m analysis.resample MATCHES.npz -o RESAMPLED.npz``: the bootstrap's resampled stats
of one file of matchings (:func:`analysis.bootstrap.save_matches`), saved for the tables.

One job per run and split (the workflow's ``resample`` rule), so the paper tables read B x 12
arrays instead of re-accumulating every run (about a minute per COCO-val-scale matching).
Per matching name (``segm``, ``bbox``, or ``baseline`` and the error types) the file holds
``image_ids`` (I,), ``stats`` (B, 12) and ``per_class`` (B, K) x100 (``nan`` where undefined)
and ``category_names``; ``resamples`` and ``seed`` say which weights
(:func:`analysis.bootstrap.resample_weights`) made them. Written atomically.
"""

from __future__ import annotations

import argparse
import sys
from typing import Mapping, Sequence

import numpy as np

from analysis.bootstrap import (DEFAULT_RESAMPLES, DEFAULT_SEED, MatchArrays, Resampler,
                                load_matches, resample_weights)
from analysis.io import atomic_path, check_outputs

__all__ = ["load_resampled", "main", "resample_matches", "save_resampled"]


def resample_matches(matches: Mapping[str, MatchArrays], resamples: int = DEFAULT_RESAMPLES,
                     seed: int = DEFAULT_SEED) -> dict[str, dict]:
    """``{name: {image_ids, stats, per_class, category_names}}`` of each matching, resampled
    with :func:`analysis.bootstrap.resample_weights` ``(I, resamples, seed)``."""
    out, weights = {}, {}
    for name, m in matches.items():
        if m.n_images not in weights:
            weights[m.n_images] = resample_weights(m.n_images, resamples, seed)
        stats, per_class = Resampler(m).stats(weights[m.n_images])
        out[name] = {"image_ids": m.image_ids, "stats": stats, "per_class": per_class,
                     "category_names": m.category_names}
    return out


def save_resampled(path, resampled: Mapping[str, dict], resamples: int, seed: int) -> None:
    """Write what :func:`resample_matches` returned, with its ``resamples`` and ``seed``."""
    arrays = {"resamples": np.array(resamples), "seed": np.array(seed)}
    for name, d in resampled.items():
        for key in ("image_ids", "stats", "per_class"):
            arrays[f"{name}/{key}"] = d[key]
        arrays[f"{name}/category_names"] = np.array(d["category_names"], dtype=str)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def load_resampled(path) -> tuple[dict[str, dict], int, int]:
    """(``{name: {...}}``, resamples, seed) of a file :func:`save_resampled` wrote."""
    with np.load(path, allow_pickle=False) as z:
        names = sorted({k.split("/", 1)[0] for k in z.files if "/" in k})
        out = {n: {"image_ids": z[f"{n}/image_ids"], "stats": z[f"{n}/stats"],
                   "per_class": z[f"{n}/per_class"],
                   "category_names": tuple(str(x) for x in z[f"{n}/category_names"])}
               for n in names}
        return out, int(z["resamples"]), int(z["seed"])


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.resample",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("matches", help="matchings .npz (evaluate or seg_errors step)")
    ap.add_argument("-o", "--output", required=True, help="resampled stats .npz (atomically; never the "
                                                        "input)")
    ap.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = ap.parse_args(argv)
    try:
        check_outputs([args.output], [args.matches])
    except ValueError as e:   # names the output itself
        print(f"error: {e}", file=sys.stderr)
        return 1
    try:
        matches = load_matches(args.matches)
        save_resampled(args.output, resample_matches(matches, args.resamples, args.seed),
                       args.resamples, args.seed)
    except (ValueError, OSError, KeyError) as e:
        print(f"error: {args.matches}: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
