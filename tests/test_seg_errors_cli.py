"""dcl-seg-errors command line, OUT.json format, Figure 2 / Table 8 reporting."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from analysis.coco_eval import STAT_NAMES
from analysis.seg_errors import analyze_errors, figure2, load_runs, table8
from analysis.seg_errors.cli import build_parser, main
from analysis.seg_errors.report import delta_frame, main as report_main
from analysis.seg_errors.synthetic import make_synthetic_coco

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def seg_files(tmp_path):
    gt, dt = make_synthetic_coco(6, seed=11, n_categories=3, gts_per_image=4,
                                 dets_per_image=20, sizes=((40, 50),), radius=(3.0, 14.0))
    g, d = tmp_path / "gt.json", tmp_path / "dt.json"
    g.write_text(json.dumps(gt))
    d.write_text(json.dumps(dt))
    return g, d


def test_cli_writes_out_json_and_summary(seg_files, tmp_path, capsys):
    g, d = seg_files
    out = tmp_path / "sub" / "OUT.json"
    rc = main([str(g), str(d), "-o", str(out), "--types", "fFP", "bFP", "FN", "fFP+bFP",
               "--mode", "authors", "--iou-threshold", "0.2"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "dAP fFP+bFP" in text and "mode=authors" in text and "baseline" in text
    res = json.loads(out.read_text())
    assert set(res) >= {"baseline", "corrected", "delta", "counts", "settings"}
    assert list(res["delta"]) == ["fFP", "bFP", "FN", "fFP+bFP"]
    assert list(res["baseline"]) == list(STAT_NAMES)
    assert res["settings"]["mode"] == "authors" and res["settings"]["iou_threshold"] == 0.2
    assert set(res["counts"]["error_pixels"]) == {"fFP", "bFP", "FN"}
    # undefined stats are JSON null (the data has no large objects)
    assert res["baseline"]["APl"] is None
    direct = analyze_errors(str(g), str(d), types=["fFP", "bFP", "FN", "fFP+bFP"],
                            mode="authors", iou_threshold=0.2)
    assert res["delta"]["FN"]["AP"] == direct["delta"]["FN"]["AP"]
    assert [p for p in os.listdir(out.parent) if p != "OUT.json"] == []   # no temp files left


@pytest.mark.parametrize("make_bad, message", [
    (lambda g, d: d.write_text("[{]"), "dt.json: results file is not valid JSON"),
    (lambda g, d: d.write_text(json.dumps([{"image_id": 999, "category_id": 1,
                                            "segmentation": [[0, 0, 4, 0, 4, 4]],
                                            "score": 0.5}])),
     "entry 0: image_id 999 is not in the ground truth"),
    (lambda g, d: d.write_text(g.read_text()), "is this a ground-truth file?"),
])
def test_cli_bad_input_one_line_error(seg_files, tmp_path, capsys, make_bad, message):
    g, d = seg_files
    make_bad(g, d)
    out = tmp_path / "OUT.json"
    assert main([str(g), str(d), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert not out.exists()


def test_cli_bad_type_is_an_error(seg_files, capsys):
    g, d = seg_files
    assert main([str(g), str(d), "--types", "FP"]) == 1
    assert "unknown error type 'FP'" in capsys.readouterr().err


@pytest.mark.slow
def test_python_m_entry_point(seg_files, tmp_path):
    g, d = seg_files
    out = tmp_path / "OUT.json"
    p = subprocess.run([sys.executable, "-m", "analysis.seg_errors", str(g), str(d), "-o",
                        str(out), "--jobs", "2", "-q"], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "" and json.loads(out.read_text())["settings"]["jobs"] == 2


def _fake(ap: float, d: dict) -> dict:
    stats = {k: ap for k in STAT_NAMES}
    return {"baseline": stats,
            "delta": {t: dict({k: 0.0 for k in STAT_NAMES}, AP=v) for t, v in d.items()}}


def test_table8_and_figure2(tmp_path):
    runs = {"Baseline": _fake(32.3, {"fFP": 5.0, "bFP": 4.7, "FN": 21.2}),
            "+Ours": _fake(36.5, {"fFP": 5.4, "bFP": 5.3, "FN": 18.8})}
    md = table8(runs).splitlines()
    assert md[0] == "| run | AP_val | ΔAP_fFP ↓ | ΔAP_bFP ↓ | ΔAP_FN ↓ |"
    assert md[2] == "| Baseline | 32.3 | 5.0 | 4.7 | 21.2 |"
    assert md[3] == "| +Ours | 36.5 | 5.4 | 5.3 | 18.8 |"
    fig = figure2(runs)
    ax = fig.axes[0]
    heights = sorted(round(p.get_height(), 6) for p in ax.patches if p.get_height() != 0)
    assert heights == sorted([5.0, 4.7, 21.2, 5.4, 5.3, 18.8])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["fFP", "bFP", "FN"]
    assert delta_frame(runs).shape == (6, 3)


def test_report_cli_from_out_files(seg_files, tmp_path, capsys):
    g, d = seg_files
    outs = []
    for mode in ("paper", "authors"):
        o = tmp_path / f"{mode}.json"
        assert main([str(g), str(d), "-o", str(o), "--mode", mode, "-q"]) == 0
        outs.append(str(o))
    capsys.readouterr()
    fig, tab = tmp_path / "fig2.png", tmp_path / "t8.md"
    assert report_main(outs + ["--figure", str(fig), "--table", str(tab)]) == 0
    printed = capsys.readouterr().out
    assert "| paper |" in printed and "| authors |" in printed
    assert tab.read_text().strip() == printed.strip()
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs = load_runs(outs, labels=["P", "A"])
    assert list(runs) == ["P", "A"] and math.isnan(runs["P"]["baseline"]["APl"])


def test_report_rejects_other_json(tmp_path, capsys):
    p = tmp_path / "x.json"
    p.write_text(json.dumps({"AP": 1}))
    assert report_main([str(p)]) == 1
    assert "x.json: missing 'baseline'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="2 labels for 1 results"):
        load_runs([str(p)], labels=["a", "b"])


def test_jobs_are_capped_at_the_usable_cpus(seg_files, tmp_path, monkeypatch, capsys):
    """Issue 15: ``--jobs 1000`` forked one worker per image."""
    import analysis.seg_errors.analyze as analyze_module
    import analysis.workers as workers

    def no_pool(*args, **kwargs):
        raise AssertionError("a process pool was started")

    monkeypatch.setattr(workers, "usable_cpus", lambda: 1)
    monkeypatch.setattr(analyze_module, "ProcessPoolExecutor", no_pool)
    g, d = seg_files
    out = tmp_path / "OUT.json"
    assert main([str(g), str(d), "-o", str(out), "--jobs", "1000", "-q"]) == 0
    assert json.loads(out.read_text())["settings"]["jobs"] == 1
    assert "capped at the number of CPUs" in " ".join(build_parser().format_help().split())


def test_usable_cpus_follows_the_affinity_mask(monkeypatch):
    import analysis.workers as workers

    monkeypatch.setattr(workers.os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    assert workers.usable_cpus() == 3 and workers.cap_jobs(1000) == 3 and workers.cap_jobs(2) == 2
    monkeypatch.delattr(workers.os, "sched_getaffinity")
    monkeypatch.setattr(workers.os, "cpu_count", lambda: None)
    assert workers.usable_cpus() == 1
