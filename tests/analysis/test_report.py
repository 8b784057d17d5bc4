import re
import struct
import subprocess
import sys
from pathlib import Path

from analysis.report import main

PNGS = ("pareto_size.png", "pareto_macs.png", "importances.png", "history.png")
REPO = Path(__file__).resolve().parents[2]


def test_report_is_self_contained_with_best_trial_and_pngs(rich_study, multi, tmp_path):
    study, url = rich_study
    # The figures are the same for both kinds of study; rendering the PNGs once keeps the test short.
    png = [] if multi else ["--no-png"]
    assert main(["--storage", url, "--out", str(tmp_path), *png]) == 0  # no --study: the storage's only study
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*src=[\"']?https?:", page)
    assert len(re.findall(r"plotly\.js v\d", page)) == 1  # inlined once, with the first figure
    assert page.count("Plotly.newPlot") == 10  # two Pareto fronts, history, importances, six questions

    best = min((t for t in study.trials if t.state.name == "COMPLETE"), key=lambda t: t.user_attrs["val_mean_px"])
    assert f"<b>Trial {best.number}</b>" in page
    assert f"python runners/export.py --study cones --storage {url} --trial {best.number} --out best.json" in page
    if multi:
        for name in PNGS:
            assert png_size(tmp_path / name) == (1100, 650), name
    else:
        assert not any(tmp_path.glob("*.png"))


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's header; fails on anything that is not a PNG."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def test_thin_study_still_reports(thin_study, tmp_path):
    _, url = thin_study
    assert main(["--study", "thin", "--storage", url, "--out", str(tmp_path), "--no-png"]) == 0
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Too few completed trials to rate parameters: 1, need at least 10." in page
    assert not any(tmp_path.glob("*.png"))


def test_script_names_a_missing_storage(tmp_path):
    url = f"sqlite:///{tmp_path}/none.db"
    done = subprocess.run([sys.executable, "analysis/report.py", "--storage", url, "--out", str(tmp_path / "out")],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr == f"report: --storage {url}: no such file {tmp_path}/none.db; point --storage at the " \
                          "search's database (sqlite:///optuna.db by default)\n"
    assert not (tmp_path / "out").exists() and not (tmp_path / "none.db").exists()


def test_pngs_need_no_browser(thin_study, tmp_path):
    # A fresh interpreter with no Chrome reachable: PATH holds only the venv's bin, BROWSER_PATH points nowhere.
    _, url = thin_study
    env = {"PATH": str(Path(sys.executable).parent), "BROWSER_PATH": str(tmp_path / "no-chrome"),
           "HOME": str(tmp_path), "MPLCONFIGDIR": str(tmp_path / "mpl")}
    code = ("import sys; from analysis.report import main; code = main(sys.argv[1:]); "
            "assert 'kaleido' not in sys.modules, 'kaleido was imported'; sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code, "--study", "thin", "--storage", url, "--out",
                           str(tmp_path / "out")], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for name in PNGS:
        assert png_size(tmp_path / "out" / name) == (1100, 650), name


def test_the_header_says_which_hand_designs_the_reference_bar_stopped(build, tmp_path):
    study, url = build.new_study(tmp_path, multi=False, name="ref")
    build.add_trial(study, "ok", kb=30, error=3.0, baseline="unet8-softmax-bn")
    build.add_trial(study, "stopped", kb=30, error=40.0, epochs=2, baseline="resnet8-linear")
    build.add_trial(study, "ok", kb=20, error=2.0)
    assert main(["--study", "ref", "--storage", url, "--out", str(tmp_path / "out"), "--no-png"]) == 0
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert ("2 hand designs: 1 trained to the end, 1 stopped early by the reference bar once far behind "
            "(resnet8-linear after epoch 2: the error recorded is the one at that epoch)") in page
