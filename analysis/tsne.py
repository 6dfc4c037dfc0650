"""t-SNE of mask-head features at foreground and background pixels (paper Figure 4).

The paper's Figure 4 shows, for the baseline and for the model trained with the dense
contrastive loss, a t-SNE of the features at foreground (red) and background (blue) pixels, and
reads from it that DCL "learns a more compact feature representation" (Sec. 5.3). Input: the
``.npz`` files of ``baselines/detectron2/dump_features.py`` (``features`` float32 ``[N, C]``,
``labels`` uint8 ``[N]``, 1 foreground / 0 background).

Features are L2-normalised per pixel before t-SNE: the loss compares pixels by cosine
similarity (paper Eq. 3 on L2-normalised features; Eq. 5 after the projection), so the
direction, not the length, of a feature is what it shapes. Beside the picture,
:func:`silhouette` gives one number per model for "more compact": the mean silhouette of the
fg/bg split with cosine distance in the ORIGINAL C-dimensional space (t-SNE distances are not
faithful), in [-1, 1], higher = the two classes more compact and better apart.

Command line (exit status 1 and one ``error: ...`` line on bad input)::

    python -m analysis.tsne base.npz dcl.npz --labels baseline DCL \\
        --figure tsne.png --json tsne.json
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np

from analysis.io import atomic_path, check_outputs, write_json_atomic

__all__ = [
    "FeatureFile",
    "MIN_PER_CLASS",
    "embed",
    "l2_normalize",
    "load_features",
    "main",
    "plot_tsne",
    "silhouette",
]

#: Fewest pixels of each class (fg, bg) a file must hold: fewer gives no meaningful picture
#: or silhouette.
MIN_PER_CLASS = 10
REQUIRED_KEYS = ("features", "labels")
FG_COLOR, BG_COLOR = "red", "blue"  # as the paper's Figure 4


@dataclass
class FeatureFile:
    """A loaded dump: ``features`` float32 ``[N, C]``, ``labels`` uint8 ``[N]`` (1 fg, 0 bg)."""

    path: str
    features: np.ndarray
    labels: np.ndarray

    @property
    def num_fg(self) -> int:
        return int((self.labels == 1).sum())

    @property
    def num_bg(self) -> int:
        return int((self.labels == 0).sum())


def load_features(path: str | os.PathLike) -> FeatureFile:
    """Read and check a feature dump.

    Raises:
        ValueError: missing or unreadable file, a missing key, wrong shapes, labels other than
            0/1, non-finite features, or fewer than :data:`MIN_PER_CLASS` pixels of a class
            (one line naming the file).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, EOFError, ValueError) as e:
        # numpy reads a file that is not .npy/.npz as a pickle and refuses it (ValueError).
        raise ValueError(f"{path}: not a readable .npz file ({e})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: a single .npy array, not an .npz of dump_features.py")
    with data:
        missing = [k for k in REQUIRED_KEYS if k not in data.files]
        if missing:
            raise ValueError(f"{path}: missing key(s) {', '.join(missing)} "
                             f"(has {', '.join(data.files) or 'none'}); expected the output "
                             "of dump_features.py")
        try:
            features, labels = data["features"], data["labels"]
        except ValueError as e:  # object arrays, refused without pickle
            raise ValueError(f"{path}: unreadable arrays ({e})") from None
    if features.ndim != 2 or labels.ndim != 1 or len(features) != len(labels):
        raise ValueError(f"{path}: expected features [N, C] and labels [N], got "
                         f"{list(features.shape)} and {list(labels.shape)}")
    if not np.issubdtype(features.dtype, np.floating) or not np.isfinite(features).all():
        raise ValueError(f"{path}: features must be finite floats")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"{path}: labels must be 0 (background) or 1 (foreground)")
    out = FeatureFile(path, features.astype(np.float32, copy=False), labels.astype(np.uint8))
    if min(out.num_fg, out.num_bg) < MIN_PER_CLASS:
        raise ValueError(f"{path}: {out.num_fg} foreground and {out.num_bg} background pixels; "
                         f"need at least {MIN_PER_CLASS} of each")
    return out


def l2_normalize(features: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit L2 norm: float ``[N, C]`` -> float32 ``[N, C]``.

    An all-zero row (every channel cut by the ReLU) stays zero instead of dividing by zero.
    """
    features = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, eps)


def embed(features: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-D t-SNE (van der Maaten & Hinton, 2008) of L2-normalised features.

    scikit-learn's ``TSNE`` (Barnes-Hut, PCA initialisation, 1,000 iterations), deterministic
    for a given ``seed``.

    Args:
        features: float ``[N, C]``, one row per pixel.
        seed: ``random_state`` of t-SNE.
        perplexity: effective number of neighbours; must be below N.

    Returns:
        float32 ``[N, 2]``.

    Raises:
        ValueError: features not 2-D, fewer than 2 rows, or ``perplexity`` not in (0, N).
    """
    from sklearn.manifold import TSNE

    features = np.asarray(features)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"features must be [N >= 2, C], got shape {list(features.shape)}")
    if not 0 < perplexity < len(features):
        raise ValueError(f"perplexity must be in (0, {len(features)}) for {len(features)} "
                         f"points, got {perplexity}")
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    return tsne.fit_transform(l2_normalize(features)).astype(np.float32)


def silhouette(features: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of the fg/bg split, cosine distance, in the original feature space.

    Rousseeuw (1987) via ``sklearn.metrics.silhouette_score``: per pixel (b - a) / max(a, b),
    a = mean distance to its own class, b = to the other class; in [-1, 1].

    Args:
        features: float ``[N, C]``.
        labels: ``[N]`` with both classes present.

    Raises:
        ValueError: shapes differ, or only one class.
    """
    from sklearn.metrics import silhouette_score

    labels = np.asarray(labels)
    if len(features) != len(labels):
        raise ValueError(f"{len(features)} features but {len(labels)} labels")
    if len(np.unique(labels)) != 2:
        raise ValueError("silhouette needs both foreground and background pixels")
    return float(silhouette_score(np.asarray(features, dtype=np.float32), labels,
                                  metric="cosine"))


def plot_tsne(panels: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | os.PathLike,
              *, scores: Optional[Mapping[str, float]] = None) -> None:
    """Draw one t-SNE panel per model, fg red and bg blue, and write the figure atomically.

    Args:
        panels: title (e.g. ``"baseline"``, ``"DCL"``) -> (embedding float ``[N, 2]``,
            labels ``[N]``, 1 fg / 0 bg), drawn left to right in mapping order.
        path: output image; the format follows the extension (``.png``, ``.pdf``, ``.svg``).
        scores: optional title -> silhouette, printed under the panel's title.

    Raises:
        ValueError: no panel, or an embedding that is not ``[N, 2]`` with N labels.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not panels:
        raise ValueError("plot_tsne needs at least one panel")
    for title, (emb, labels) in panels.items():
        emb = np.asarray(emb)
        if emb.ndim != 2 or emb.shape[1] != 2 or len(emb) != len(labels):
            raise ValueError(f"panel {title!r}: expected embedding [N, 2] and N labels, got "
                             f"{list(emb.shape)} and {len(labels)}")
    # A Figure with its own Agg canvas, not pyplot: no global backend state, safe in workers.
    fig = Figure(figsize=(4.0 * len(panels), 4.3))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, (emb, labels)) in zip(axes, panels.items()):
        emb, labels = np.asarray(emb), np.asarray(labels)
        # Background first, so the (usually fewer) foreground points are not hidden under it.
        for value, color, name in ((0, BG_COLOR, "background"), (1, FG_COLOR, "foreground")):
            pts = emb[labels == value]
            ax.scatter(pts[:, 0], pts[:, 1], s=3, c=color, alpha=0.6, linewidths=0, label=name)
        if scores is not None and title in scores:
            title = f"{title}\nsilhouette (cosine) {scores[title]:.3f}"
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].legend(loc="best", fontsize=8, markerscale=3, frameon=False)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=150)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m analysis.tsne",
        description="t-SNE of mask-head features at fg/bg pixels, one panel per model "
                    "(Chen et al., BMVC 2022, Figure 4), and the fg/bg silhouette of each.")
    ap.add_argument("files", nargs="+", metavar="FEATURES.npz",
                    help="outputs of baselines/detectron2/dump_features.py, one per model")
    ap.add_argument("--labels", nargs="+", metavar="NAME",
                    help="panel titles, one per file (default: the file names)")
    ap.add_argument("--figure", metavar="OUT.png", help="write the figure here")
    ap.add_argument("--json", metavar="OUT.json",
                    help="write per-model silhouette and pixel counts here")
    ap.add_argument("--seed", type=int, default=0, help="t-SNE random state (default: 0)")
    ap.add_argument("--perplexity", type=float, default=30.0,
                    help="t-SNE perplexity (default: 30)")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0 ok, 1 bad input, 2 bad usage)."""
    args = build_parser().parse_args(argv)
    labels = args.labels or [os.path.splitext(os.path.basename(f))[0] for f in args.files]
    try:
        if len(labels) != len(args.files):
            raise ValueError(f"{len(args.files)} files but {len(labels)} --labels")
        if len(set(labels)) != len(labels):
            raise ValueError(f"--labels must be distinct, got {' '.join(labels)}")
        check_outputs([args.figure, args.json], args.files)
        dumps = [load_features(f) for f in args.files]
        scores = {name: silhouette(d.features, d.labels) for name, d in zip(labels, dumps)}
        result = {
            "metric": "silhouette of the fg/bg split, cosine distance, original feature space",
            "seed": args.seed,
            "perplexity": args.perplexity,
            "models": {name: {"file": d.path, "silhouette": scores[name],
                              "num_fg": d.num_fg, "num_bg": d.num_bg,
                              "channels": int(d.features.shape[1])}
                       for name, d in zip(labels, dumps)},
        }
        if args.figure:
            panels = {name: (embed(d.features, seed=args.seed, perplexity=args.perplexity),
                             d.labels) for name, d in zip(labels, dumps)}
            plot_tsne(panels, args.figure, scores=scores)
        if args.json:
            write_json_atomic(args.json, result, indent=2)
    except (ValueError, OSError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    for name, row in result["models"].items():
        print(f"{name}: silhouette {row['silhouette']:.3f} "
              f"({row['num_fg']} fg, {row['num_bg']} bg pixels)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
