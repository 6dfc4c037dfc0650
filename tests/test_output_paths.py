"""Output paths of the analysis CLIs: never an input (issue 15, case 2), checked before any
work, and write errors name the output the user gave, not a temp file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from analysis import cityscapes_eval, intervals, subset, tsne
from analysis.io import check_outputs, write_json_atomic
from analysis.seg_errors import cli as seg_errors_cli
from analysis.seg_errors import report
from analysis.seg_errors.synthetic import make_synthetic_coco

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def files(tmp_path):
    gt, dt = make_synthetic_coco(2, seed=3, n_categories=2, gts_per_image=2, dets_per_image=4,
                                 sizes=((30, 40),), radius=(3.0, 10.0))
    g, d = tmp_path / "gt.json", tmp_path / "dt.json"
    g.write_text(json.dumps(gt))
    d.write_text(json.dumps(dt))
    return g, d


def _snapshot(folder) -> dict:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())
            if p.is_file()}


def _one_line_error(capsys, *needles) -> None:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, err


# Each CLI with its inputs (I0, I1) and the argument list that names OUT as its output.
CLIS = {
    "dcl-seg-errors": (seg_errors_cli.main, ["I0", "I1", "-o", "OUT", "-q"], 1),
    "dcl-seg-errors --matches-out": (seg_errors_cli.main, ["I0", "I1", "--matches-out", "OUT",
                                                           "-q"], 1),
    "analysis.intervals --json": (intervals.main, ["I0", "I1", "--json", "OUT"], 1),
    "analysis.subset": (subset.main, ["I1", "I0", "-o", "OUT"], 2),
    "analysis.cityscapes_eval": (cityscapes_eval.main, ["I0", "GTFINE", "I1", "-o", "OUT"], 1),
    "analysis.tsne --json": (tsne.main, ["I0", "I1", "--json", "OUT"], 1),
    "analysis.tsne --figure": (tsne.main, ["I0", "I1", "--figure", "OUT"], 1),
    "seg_errors.report --table": (report.main, ["I0", "I1", "--table", "OUT"], 1),
    "seg_errors.report --figure": (report.main, ["I0", "I1", "--figure", "OUT"], 1),
}


def _argv(template, mapping) -> list[str]:
    return [str(mapping.get(a, a)) for a in template]


@pytest.mark.parametrize("cli", CLIS)
@pytest.mark.parametrize("how", ["input 0", "input 1", "symlink", "hard link", "relative"])
def test_output_that_is_an_input_is_refused(files, tmp_path, capsys, monkeypatch, cli, how):
    g, d = files
    main, template, code = CLIS[cli]
    if how == "symlink":
        out = tmp_path / "link.json"
        out.symlink_to(g)
    elif how == "hard link":
        out = tmp_path / "hard.json"
        os.link(d, out)
    elif how == "relative":
        monkeypatch.chdir(tmp_path)
        out = os.path.join("..", tmp_path.name, "gt.json")
    else:
        out = g if how == "input 0" else d
    before = _snapshot(tmp_path)
    rc = main(_argv(template, {"I0": g, "I1": d, "OUT": out, "GTFINE": tmp_path}))
    assert rc == code
    _one_line_error(capsys, f"{out}: the output is the input")
    assert _snapshot(tmp_path) == before          # inputs untouched, nothing left behind


@pytest.mark.parametrize("cli", CLIS)
def test_output_that_cannot_be_written_is_refused_before_any_work(files, tmp_path, capsys,
                                                                 cli):
    g, d = files
    main, template, code = CLIS[cli]
    out = tmp_path / "gt.json" / "OUT.json"       # its folder would be a file
    before = _snapshot(tmp_path)
    assert main(_argv(template, {"I0": g, "I1": d, "OUT": out, "GTFINE": tmp_path})) == code
    _one_line_error(capsys, f"{out}: cannot write there", "is not a folder")
    assert _snapshot(tmp_path) == before


def test_output_folder_and_duplicate_outputs_are_refused(files, tmp_path):
    g, d = files
    with pytest.raises(ValueError, match="the output is a folder"):
        check_outputs([tmp_path], [g])
    with pytest.raises(ValueError, match="given as two outputs"):
        check_outputs([tmp_path / "a.png", tmp_path / "a.png"], [g])
    check_outputs([tmp_path / "new" / "deeper" / "out.json", None], [g, d])   # created later


def test_write_error_names_the_output_not_the_temp_file(tmp_path):
    target = tmp_path / "OUT.json"
    target.mkdir()
    (target / "keep").write_text("x")            # os.replace cannot replace a full folder
    with pytest.raises(OSError) as err:
        write_json_atomic(target, {"a": 1})
    assert f"cannot write {target}" in str(err.value) and ".OUT.json." not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["OUT.json"]   # no temp file left


@pytest.mark.slow
def test_dcl_seg_errors_refuses_to_overwrite_the_ground_truth(files, tmp_path):
    """The probe's case, end to end: ``-o gt.json`` used to exit 0 and replace the ground
    truth with the results."""
    g, d = files
    before = _snapshot(tmp_path)
    done = subprocess.run([sys.executable, "-m", "analysis.seg_errors", str(g), str(d), "-o",
                           str(g)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 1
    assert done.stderr == f"error: {g}: the output is the input {g}; refusing to overwrite it\n"
    assert _snapshot(tmp_path) == before


def test_resample_refuses_its_input_as_output(tmp_path, capsys):
    from analysis import resample

    m = tmp_path / "matches_val.npz"
    m.write_bytes(b"not read")
    before = _snapshot(tmp_path)
    assert resample.main([str(m), "-o", str(m)]) == 1
    _one_line_error(capsys, f"{m}: the output is the input")
    assert _snapshot(tmp_path) == before
