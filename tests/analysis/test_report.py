import re
import subprocess
import sys
from pathlib import Path

from analysis.report import main

PNGS = ("pareto_size.png", "pareto_macs.png", "importances.png", "history.png")
REPO = Path(__file__).resolve().parents[2]


def test_report_is_self_contained_with_best_trial_and_pngs(rich_study, multi, tmp_path):
    study, url = rich_study
    # The figures are the same for both kinds of study; rendering PNGs (starting Chrome) once keeps the test short.
    png = [] if multi else ["--no-png"]
    assert main(["--storage", url, "--out", str(tmp_path), *png]) == 0  # no --study: the storage's only study
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*src=[\"']?https?:", page)
    assert len(re.findall(r"plotly\.js v\d", page)) == 1  # inlined once, with the first figure
    assert page.count("Plotly.newPlot") == 9  # two Pareto fronts, history, importances, five questions

    best = min((t for t in study.trials if t.state.name == "COMPLETE"), key=lambda t: t.user_attrs["val_mean_px"])
    assert f"<b>Trial {best.number}</b>" in page
    assert f"python runners/export.py --study cones --storage {url} --trial {best.number} --out best.json" in page
    if multi:
        for name in PNGS:
            assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


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
    assert f"no study in {url}" in done.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "none.db").exists()


def test_without_chrome_the_page_is_still_written(thin_study, tmp_path, monkeypatch, capsys):
    _, url = thin_study
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-chrome"))
    assert main(["--study", "thin", "--storage", url, "--out", str(tmp_path)]) == 1
    assert "apt-get install -y --no-install-recommends chromium" in capsys.readouterr().err
    assert (tmp_path / "report.html").exists()
