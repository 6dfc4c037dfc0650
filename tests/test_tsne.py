"""Figure 4: the feature dump (detectron2) and the t-SNE / silhouette analysis (analysis.tsne)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from analysis import tsne

REPO = Path(__file__).resolve().parents[1]
D2 = REPO / "baselines" / "detectron2"
CONFIGS = D2 / "configs" / "embedded"

torch.set_num_threads(1)


# --------------------------------------------------------------------------- analysis.tsne


def clusters(n=40, dim=16, separated=True, seed=0):
    """Two classes: tight clusters around orthogonal directions, or both drawn alike."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.array([1, 0], dtype=np.uint8), n)
    centres = np.eye(dim, dtype=np.float32)[[0, 1]] * 5.0
    if separated:
        base = centres[1 - labels]
    else:
        base = centres[rng.integers(0, 2, size=2 * n)]
    features = base + rng.normal(0, 0.5, size=(2 * n, dim)).astype(np.float32)
    return features.astype(np.float32), labels


def write_dump(path, features, labels, **extra):
    np.savez(path, features=features, labels=labels, **extra)
    return path


def test_l2_normalize_gives_unit_rows_and_keeps_zero_rows():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [0.0, -2.0]])
    out = tsne.l2_normalize(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0], [0.0, -1.0]], atol=1e-7)


def test_embed_is_deterministic_and_keeps_separated_clusters_apart():
    from sklearn.metrics import silhouette_score

    features, labels = clusters()
    emb = tsne.embed(features, seed=0, perplexity=10)
    assert emb.shape == (80, 2) and emb.dtype == np.float32 and np.isfinite(emb).all()
    np.testing.assert_array_equal(emb, tsne.embed(features, seed=0, perplexity=10))
    assert silhouette_score(emb, labels) > 0.5


def test_embed_sees_direction_not_length():
    """Classes apart in direction (0.3 rad) but with lengths varying 10x: only normalised
    features separate them (raw t-SNE of these mixes the classes, silhouette about 0.25)."""
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(0)
    labels = np.repeat(np.array([1, 0], dtype=np.uint8), 40)
    directions = np.zeros((2, 16))
    directions[0, 0] = 1.0
    directions[1, :2] = np.cos(0.3), np.sin(0.3)
    features = directions[1 - labels] + rng.normal(0, 0.02, size=(80, 16))
    features *= rng.uniform(1.0, 10.0, size=(80, 1))
    emb = tsne.embed(features.astype(np.float32), perplexity=10)
    assert silhouette_score(emb, labels) > 0.6


@pytest.mark.parametrize("perplexity", [0, 80, 200])
def test_embed_rejects_perplexity_outside_0_n(perplexity):
    features, _ = clusters()
    with pytest.raises(ValueError, match="perplexity"):
        tsne.embed(features, perplexity=perplexity)


def test_silhouette_higher_for_separated_than_for_mixed_classes():
    sep = tsne.silhouette(*clusters(separated=True))
    mixed = tsne.silhouette(*clusters(separated=False))
    assert sep > 0.5 and abs(mixed) < 0.1 and sep > mixed


def test_silhouette_is_cosine_so_ignores_row_length():
    features, labels = clusters()
    scale = np.random.default_rng(2).uniform(0.1, 10.0, size=(len(features), 1))
    assert tsne.silhouette(features * scale, labels) == pytest.approx(
        tsne.silhouette(features, labels), abs=1e-5)


def test_silhouette_needs_both_classes():
    features, labels = clusters()
    with pytest.raises(ValueError, match="both"):
        tsne.silhouette(features, np.ones_like(labels))


def test_plot_tsne_writes_one_png_atomically(tmp_path):
    features, labels = clusters()
    emb = np.random.default_rng(0).normal(size=(len(labels), 2))
    out = tmp_path / "fig" / "tsne.png"
    tsne.plot_tsne({"baseline": (emb, labels), "DCL": (emb[::-1], labels)}, out,
                   scores={"DCL": 0.5})
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["tsne.png"]  # no temp file left
    from PIL import Image

    width, height = Image.open(out).size
    assert width > 1.5 * height  # two panels side by side


def test_plot_tsne_rejects_a_bad_panel(tmp_path):
    with pytest.raises(ValueError, match="panel 'x'"):
        tsne.plot_tsne({"x": (np.zeros((5, 3)), np.zeros(5))}, tmp_path / "a.png")
    with pytest.raises(ValueError, match="at least one"):
        tsne.plot_tsne({}, tmp_path / "a.png")


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "analysis.tsne", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_cli_writes_figure_and_json_with_one_silhouette_per_model(tmp_path):
    a = write_dump(tmp_path / "a.npz", *clusters(separated=False), roi=np.zeros(80, np.int32))
    b = write_dump(tmp_path / "b.npz", *clusters(separated=True))
    fig, js = tmp_path / "t.png", tmp_path / "t.json"
    r = run_cli(a, b, "--labels", "baseline", "DCL", "--figure", fig, "--json", js,
                "--perplexity", "10")
    assert r.returncode == 0, r.stderr
    assert fig.read_bytes()[:4] == b"\x89PNG"
    result = json.loads(js.read_text())
    models = result["models"]
    assert list(models) == ["baseline", "DCL"]
    assert models["DCL"]["silhouette"] > models["baseline"]["silhouette"]
    assert models["DCL"]["num_fg"] == 40 and models["DCL"]["num_bg"] == 40
    assert models["DCL"]["channels"] == 16 and result["perplexity"] == 10
    assert "baseline: silhouette" in r.stdout


@pytest.mark.parametrize("case, message", [
    ("missing", "no such file"),
    ("keys", "missing key(s) labels"),
    ("few", "need at least 10 of each"),
    ("labels", "2 files but 1 --labels"),
    ("values", "labels must be 0"),
    ("notnpz", "not a readable .npz"),
    ("npy", "a single .npy array"),
    ("object", "unreadable arrays"),
])
def test_cli_bad_input_gives_one_error_line(tmp_path, case, message):
    good = write_dump(tmp_path / "good.npz", *clusters())
    features, labels = clusters()
    files = {
        "missing": [tmp_path / "absent.npz"],
        "keys": [tmp_path / "keys.npz"],
        "few": [write_dump(tmp_path / "few.npz", features[35:], labels[35:])],
        "labels": [good, good],
        "values": [write_dump(tmp_path / "v.npz", features, labels + 1)],
        "notnpz": [tmp_path / "text.npz"],
        "npy": [tmp_path / "one.npy"],
        "object": [write_dump(tmp_path / "o.npz", features.astype(object), labels)],
    }[case]
    if case == "npy":
        np.save(files[0], features)
    if case == "keys":
        np.savez(files[0], features=features)
    if case == "notnpz":
        files[0].write_text("not numpy\n")
    r = run_cli(*files, "--labels", "x", "--json", tmp_path / "o.json")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr
    assert not (tmp_path / "o.json").exists()


# ----------------------------------------------------------------- dcl_detectron2.features

@pytest.fixture(scope="module")
def dump():
    """dcl_detectron2.features (skips the dump tests where detectron2 is not installed)."""
    pytest.importorskip("detectron2")
    from dcl_detectron2 import features

    return features


def test_sample_roi_pixels_follows_the_mask_and_caps_each_class(dump):
    gt = torch.zeros(2, 28, 28, dtype=torch.bool)
    gt[0, :, :14] = True  # left half foreground
    gt[1, 3, 5:10] = True  # five foreground pixels only
    roi, pixel, label = dump.sample_roi_pixels(gt, 32, np.random.default_rng(0))
    flat = gt.reshape(2, -1).numpy()
    np.testing.assert_array_equal(label, flat[roi, pixel].astype(np.uint8))
    for r, fg in ((0, 32), (1, 5)):
        mine = roi == r
        assert (label[mine] == 1).sum() == fg and (label[mine] == 0).sum() == 32
        assert len(np.unique(pixel[mine])) == mine.sum()  # without replacement
    np.testing.assert_array_equal(np.sort(pixel[(roi == 1) & (label == 1)]),
                                  3 * 28 + np.arange(5, 10))
    again = dump.sample_roi_pixels(gt, 32, np.random.default_rng(0))
    assert all(np.array_equal(x, y) for x, y in zip((roi, pixel, label), again))
    with pytest.raises(ValueError, match=">= 1"):
        dump.sample_roi_pixels(gt, 0, np.random.default_rng(0))


def test_pixel_subset_keeps_a_uniform_subset_in_offering_order(dump):
    subset = dump.PixelSubset(50, np.random.default_rng(0))
    for start in range(0, 300, 100):
        subset.offer(value=np.arange(start, start + 100), other=np.zeros((100, 3)))
    kept = subset.arrays()
    assert len(kept["value"]) == 50 and kept["other"].shape == (50, 3)
    assert np.all(np.diff(kept["value"]) > 0)
    assert kept["value"].min() < 100 and kept["value"].max() >= 200  # not just the first batch
    small = dump.PixelSubset(50, np.random.default_rng(0))
    small.offer(value=np.arange(7))
    np.testing.assert_array_equal(small.arrays()["value"], np.arange(7))
    assert dump.PixelSubset(5, np.random.default_rng(0)).arrays() == {}


def test_non_conv_upsample_mask_head_is_refused(dump):
    with pytest.raises(dump.FeatureDumpError, match="not a conv-upsample head"):
        dump.mask_feature_extractor(torch.nn.Conv2d(4, 4, 1))


def embedded_args(config, out, *opts, data=None, datasets=None):
    """dump_features.py's argv over the embedded splits under ``data`` (or ``datasets``)."""
    datasets = datasets or [
        f"embedded_train={data}/annotations/instances_train.json:{data}/train",
        f"embedded_val={data}/annotations/instances_val.json:{data}/val",
    ]
    args = ["--config-file", str(config)]
    for spec in datasets:
        args += ["--dataset", spec]
    return args + ["--out", str(out), *opts]


def random_checkpoint(dump, argv, path):
    """A model 'trained 0 iterations': random init, saved as a detectron2 checkpoint."""
    from detectron2.modeling import build_model
    from dcl_detectron2.engine import setup

    args = dump.parse_args(argv)
    args.opts = ["OUTPUT_DIR", str(Path(path).parent / "setup_log"), *args.opts]
    args.eval_only = True
    torch.manual_seed(0)
    model = build_model(setup(args))
    torch.save({"model": model.state_dict()}, path)
    return model


def make_synthetic_split(root):
    """One 128x128 image: A's mask is the left half of its 64x64 box, B fills its box."""
    from PIL import Image
    from pycocotools import mask as mask_utils

    (root / "images").mkdir(parents=True)
    Image.fromarray(np.full((128, 128, 3), 90, np.uint8)).save(root / "images" / "a.png")
    anns = []
    for i, (x0, y0, x1, y1, fill_x1) in enumerate([(16, 16, 80, 80, 48), (90, 90, 120, 120, 120)]):
        m = np.zeros((128, 128), np.uint8, order="F")
        m[y0:y1, x0:fill_x1] = 1
        rle = mask_utils.encode(m)
        anns.append({"id": i + 1, "image_id": 7, "category_id": 3, "iscrowd": 0,
                     "bbox": [x0, y0, x1 - x0, y1 - y0], "area": float(m.sum()),
                     "segmentation": {"size": [128, 128], "counts": rle["counts"].decode()}})
    data = {"images": [{"id": 7, "file_name": "a.png", "height": 128, "width": 128}],
            "annotations": anns, "categories": [{"id": 3, "name": "blob"}]}
    (root / "val.json").write_text(json.dumps(data))
    return f"synth_val={root / 'val.json'}:{root / 'images'}"


@pytest.mark.parametrize("config", ["mask_rcnn_R_18_FPN.yaml", "mask_rcnn_R_18_FPN_dcl.yaml"])
def test_dump_labels_match_the_gt_mask_cropped_to_the_box(dump, tmp_path, config):
    spec = make_synthetic_split(tmp_path / "data")
    out = tmp_path / "f.npz"
    argv = embedded_args(
        CONFIGS / config, out, "OUTPUT_DIR", str(tmp_path / "log"),
        "DATASETS.TRAIN", '("synth_val",)', "DATASETS.TEST", '("synth_val",)',
        "INPUT.MIN_SIZE_TEST", "128", datasets=[spec])
    random_checkpoint(dump, argv, tmp_path / "model.pth")
    arrays = dump.main(argv + ["MODEL.WEIGHTS", str(tmp_path / "model.pth")])

    with np.load(out) as saved:
        assert {k: (saved[k].dtype, saved[k].shape) for k in saved.files} == {
            "features": (np.float32, (96, 128)), "labels": (np.uint8, (96,)),
            "roi": (np.int32, (96,)), "image_id": (np.int64, (96,)), "pixel": (np.int32, (96,))}
        np.testing.assert_array_equal(saved["features"], arrays["features"])
    labels, roi, pixel = arrays["labels"], arrays["roi"], arrays["pixel"]
    assert set(arrays["image_id"]) == {7}
    # A: mask = left half of the box, so the 28x28 crop is fg exactly in columns 0..13.
    a = roi == 0
    assert (labels[a] == 1).sum() == 32 and (labels[a] == 0).sum() == 32
    np.testing.assert_array_equal(labels[a], (pixel[a] % 28 < 14).astype(np.uint8))
    # B: its mask fills the box, so the RoI has no background pixel.
    assert (roi == 1).sum() == 32 and labels[roi == 1].all()
    assert np.isfinite(arrays["features"]).all() and (arrays["features"] >= 0).all()  # post-ReLU
    assert (tmp_path / "log" / "config.yaml").is_file()


def test_dump_on_embedded_val_picks_the_same_pixels_for_every_model(dump, tmp_path,
                                                                    embedded_dataset):
    results = {}
    for config in ("mask_rcnn_R_18_FPN.yaml", "mask_rcnn_R_18_FPN_dcl.yaml"):
        out = tmp_path / f"{config}.npz"
        argv = embedded_args(CONFIGS / config, out, "--max-pixels", "300", "--pixels-per-roi",
                             "8", "--seed", "3", data=embedded_dataset)
        random_checkpoint(dump, argv, tmp_path / "model.pth")
        dump.main(argv + ["MODEL.WEIGHTS", str(tmp_path / "model.pth")])
        with np.load(out) as saved:
            results[config] = {k: saved[k] for k in saved.files}
        assert (tmp_path / f"{config}_log" / "log.txt").is_file()  # default OUTPUT_DIR
    base, dcl = results.values()
    assert len(base["labels"]) == 300 and base["features"].shape == (300, 128)
    for key in ("labels", "roi", "image_id", "pixel"):
        np.testing.assert_array_equal(base[key], dcl[key])
    assert not np.array_equal(base["features"], dcl["features"])
    val = json.loads((embedded_dataset / "annotations" / "instances_val.json").read_text())
    assert set(base["image_id"]) <= {im["id"] for im in val["images"]}
    assert base["roi"].max() < len(val["annotations"])
    assert 0.3 < base["labels"].mean() < 0.7
    # At most 8 fg and 8 bg pixels of each RoI survive.
    for r in np.unique(base["roi"]):
        for c in (0, 1):
            assert ((base["roi"] == r) & (base["labels"] == c)).sum() <= 8


def test_dump_refuses_a_model_with_another_mask_head(dump, tmp_path, embedded_dataset):
    from dcl_detectron2.engine import setup

    argv = embedded_args(CONFIGS / "mask_rcnn_R_18_FPN.yaml", tmp_path / "f.npz",
                         "OUTPUT_DIR", str(tmp_path / "log"), data=embedded_dataset)
    model = random_checkpoint(dump, argv, tmp_path / "model.pth")
    model.roi_heads.mask_head = torch.nn.Conv2d(128, 128, 1)
    args = dump.parse_args(argv)
    args.eval_only = True
    with pytest.raises(dump.FeatureDumpError, match="Conv2d is not a conv-upsample head"):
        dump.dump_features(setup(args), model=model)


def test_dump_cli_needs_the_trained_weights(dump, tmp_path, embedded_dataset):
    argv = embedded_args(CONFIGS / "mask_rcnn_R_18_FPN.yaml", tmp_path / "f.npz",
                         "OUTPUT_DIR", str(tmp_path / "log"), data=embedded_dataset)
    with pytest.raises(SystemExit) as e:
        dump.main(argv)
    assert e.value.code == "error: MODEL.WEIGHTS is empty: give the trained model's checkpoint"
    with pytest.raises(SystemExit) as e:
        dump.main(argv + ["MODEL.WEIGHTS", str(tmp_path / "absent.pth")])
    assert e.value.code == f"error: MODEL.WEIGHTS {tmp_path / 'absent.pth'}: no such file"
    assert not (tmp_path / "f.npz").exists()
