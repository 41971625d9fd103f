"""``srlab.compare``: a self-contained HTML and a Markdown report from run and sweep folders."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from srlab.compare import build_report, main
from tests.conftest import TINY_NETS, compose_config, write_hydra_record


class _Report(HTMLParser):
    """Collects tables (rows of cell texts) and image sources."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.images: list[str] = []
        self.best: list[tuple[int, int]] = []  # (row, column) of cells marked best
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
            if ("class", "best") in attrs:
                self.best.append((len(self.tables[-1]) - 1, len(self.tables[-1][-1])))
        elif tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _parse(path: Path) -> _Report:
    report = _Report()
    report.feed(path.read_text())
    return report


def _fake_run(folder: Path, psnr: list[float], overrides: str = "", launch: str = "", mode: str = "MULTIRUN") -> Path:
    (folder / "csv").mkdir(parents=True)
    rows = ["epoch,step,train/loss,val/psnr,val/ssim,val/psnr_bicubic"]
    rows += [f"{e},{2 * e + 1},0.{5 - e},{p},0.5,20.0" for e, p in enumerate(psnr)]
    (folder / "csv" / "metrics.csv").write_text("\n".join(rows) + "\n")
    (folder / "images").mkdir()
    for epoch in range(len(psnr)):
        Image.new("RGB", (48, 20), (40 * epoch, 90, 200)).save(folder / "images" / f"val_epoch{epoch:03d}.png")
    if overrides:
        write_hydra_record(folder, overrides.split(), mode=mode, model="quickstart", launch=launch.split() or None)
    return folder


def test_report_names_runs_marks_the_best_and_keeps_paths_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # folders are shown relative to where the report is made
    single = _fake_run(tmp_path / "outputs" / "2026-01-02" / "10-20-30", [20.0, 21.0, 20.5], "seed=3", mode="RUN")
    sweep = tmp_path / "multirun" / "2026-01-02" / "11-00-00"
    _fake_run(sweep / "0", [19.0], "model=srgan seed=3", launch="model=srgan,esrgan seed=3")
    _fake_run(sweep / "1", [22.0, 23.5], "model=esrgan seed=3", launch="model=srgan,esrgan seed=3")
    html_path, md_path = build_report([single, sweep], tmp_path / "out")
    report = _parse(html_path)
    (table,) = report.tables
    header, *rows = table
    assert header[:4] == ["run", "colour", "model", "best val/psnr"]
    # the sweep expanded to its jobs, each named by what the sweep varies; the single run by model and time
    assert [r[0] for r in rows] == ["quickstart 2026-01-02_10-20-30", "model=srgan", "model=esrgan"]
    assert [r[1].split()[-1] for r in rows] == ["blue", "orange", "green"]
    assert rows[0][3:5] == ["21.000", "20.500"]
    best_psnr = header.index("best val/psnr")
    assert (3, best_psnr) in report.best and (1, best_psnr) not in report.best  # rows counted with the header
    assert len(report.images) == 4  # curves + one latest grid per run
    assert all(src.startswith("data:image/png;base64,") for src in report.images)
    assert (tmp_path / "out" / "curves.png").is_file()
    markdown = md_path.read_text()
    assert "| model=esrgan | green | quickstart | **23.500** | **23.500** |" in markdown
    assert "folder `multirun/2026-01-02/11-00-00/1`" in markdown  # relative, not the machine's path
    for text in (markdown, html_path.read_text()):
        assert str(tmp_path) not in text
    assert markdown.rstrip().endswith(
        "- val/psnr: `model=esrgan` is best at 23.500 dB, +3.500 dB over bicubic (20.000 dB), +2.500 dB over the "
        "next run\n- val/ssim: `quickstart 2026-01-02_10-20-30` is best at 0.5000 (no bicubic value logged "
        "to compare with), +0.0000 over the next run")
    assert "| green: `model=esrgan` |" in markdown and "![model=esrgan](images/model_esrgan_val_epoch001.png)" in markdown
    assert (tmp_path / "out" / "images" / "quickstart_2026-01-02_10-20-30_val_epoch002.png").is_file()


def test_runs_keep_their_colour_in_every_panel(tmp_path):
    from srlab.runs.plots import plot_runs, read_metrics

    a = _fake_run(tmp_path / "a", [20.0, 21.0])
    b = _fake_run(tmp_path / "b", [22.0, 21.5])
    frames = {name: read_metrics(run / "csv" / "metrics.csv") for name, run in (("x", a), ("y", b))}
    figures = []
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr("matplotlib.pyplot.close", figures.append)  # keep the figure to look at its lines
    try:
        plot_runs(frames, tmp_path / "curves.png", title="all runs", colours={"x": "red", "y": "cyan"})
    finally:
        monkeypatch.undo()
    (fig,) = figures
    seen = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            seen.setdefault(line.get_gid(), set()).add(line.get_color())
    assert seen == {"x": {"tab:red"}, "y": {"tab:cyan"}}
    legend_texts = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert legend_texts == ["x", "y"]
    # the title heads that legend: as a suptitle it was drawn over the legend above the panels
    assert fig.legends[0].get_title().get_text() == "all runs" and fig._suptitle is None


def test_not_a_run_is_one_line_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "not a run or sweep folder" in err and "\n" not in err


@pytest.mark.slow
def test_report_from_real_runs(tmp_path):
    from srlab.train import run

    for name, seed in (("a", 1), ("b", 2)):
        run(compose_config(tmp_path / name, ["model=quickstart", "debug=smoke", f"seed={seed}",
                                             *TINY_NETS["quickstart"]]))
    assert main([str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "out")]) == 0
    report = _parse(tmp_path / "out" / "report.html")
    header, *rows = report.tables[0]
    assert [r[0] for r in rows] == ["a", "b"]
    params = header.index("generator params")
    assert all(r[params].replace(",", "").isdigit() for r in rows), rows  # counted from the checkpoints
    assert rows[0][header.index("model")] == "RRDBNet"
    assert len(report.images) == 3 and all(s.startswith("data:image/png;base64,") for s in report.images)


def test_benchmark_sets_get_a_panel_each_with_the_bicubic_level(tmp_path):
    import pandas as pd

    from srlab.runs.plots import plot_runs

    frame = pd.DataFrame({
        "step": [99, 199, 199],
        "val/Set5/psnr_y": [29.0, 30.0, None],
        "val/Set5/psnr_y_bicubic": [28.4, None, None],
        "val/Set5/ssim_y": [0.85, 0.86, None],
        "train/loss": [None, None, 0.03],
    })
    figures = []
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr("matplotlib.pyplot.close", figures.append)
    try:
        plot_runs({"run": frame}, tmp_path / "curves.png")
    finally:
        monkeypatch.undo()
    (fig,) = figures
    axes = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    assert {"Set5 PSNR (dB, Y)", "Set5 SSIM (Y)", "Generator loss"} <= set(axes)
    lines = {line.get_label(): line for line in axes["Set5 PSNR (dB, Y)"].get_lines()}
    assert list(lines["val/Set5/psnr_y"].get_ydata()) == [29.0, 30.0]
    assert set(lines["val/Set5/psnr_y_bicubic"].get_ydata()) == {28.4}  # a horizontal level over the run


def test_runs_validated_on_benchmark_sets_get_their_columns_and_verdicts(tmp_path):
    run = tmp_path / "bench_run"
    (run / "csv").mkdir(parents=True)
    (run / "csv" / "metrics.csv").write_text(
        "epoch,step,train/loss,val/Set5/psnr_y,val/Set5/ssim_y,val/Set5/psnr_y_bicubic,val/Set5/ssim_y_bicubic\n"
        "0,99,0.04,29.5,0.85,28.4,0.81\n1,199,0.03,30.25,0.87,,\n")
    (run / "images" / "Set5").mkdir(parents=True)
    Image.new("RGB", (48, 20)).save(run / "images" / "Set5" / "val_epoch001.png")
    _, md_path = build_report([run], tmp_path / "out")
    md = md_path.read_text()
    header = next(line for line in md.splitlines() if line.startswith("| run"))
    assert "best Set5 PSNR-Y" in header and "Set5 bicubic PSNR-Y" in header
    assert "**30.250**" in md and "**0.8700**" in md
    assert "Set5 PSNR-Y: `bench_run` is best at 30.250 dB, +1.850 dB over bicubic (28.400 dB)" in md
    assert "no run was validated" not in md  # crop metrics are absent by design, not a failure
    assert "images/bench_run_val_epoch001.png" in md  # the set's latest grid


def _perceptual_run(folder: Path, rows: list[tuple[float, float, float]]) -> Path:
    """A run validated on Set5 with LPIPS and DISTS: rows of (psnr_y, lpips, dists) per validation step."""
    (folder / "csv").mkdir(parents=True)
    lines = ["epoch,step,val/Set5/psnr_y,val/Set5/ssim_y,val/Set5/lpips,val/Set5/dists,"
             "val/Set5/psnr_y_bicubic,val/Set5/lpips_bicubic,val/Set5/dists_bicubic"]
    for e, (p, lp, d) in enumerate(rows):
        bicubic = "28.4,0.3400,0.2200" if e == 0 else ",,"
        lines.append(f"{e},{100 * (e + 1) - 1},{p},0.8,{lp},{d},{bicubic}")
    (folder / "csv" / "metrics.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_lpips_and_dists_columns_mark_the_lowest_and_plot_the_trade(tmp_path):
    # the PSNR run is best in PSNR; the GAN run, lower in PSNR, is best in LPIPS and DISTS (their lowest, not last)
    psnr_run = _perceptual_run(tmp_path / "runs" / "psnr", [(30.0, 0.30, 0.20), (30.5, 0.28, 0.19)])
    gan_run = _perceptual_run(tmp_path / "runs" / "gan", [(29.0, 0.20, 0.15), (28.6, 0.12, 0.11), (28.8, 0.14, 0.12)])
    html_path, md_path = build_report([psnr_run, gan_run], tmp_path / "out")
    md = md_path.read_text()
    header = next(line for line in md.splitlines() if line.startswith("| run"))
    assert "best Set5 LPIPS ↓" in header and "best Set5 DISTS ↓" in header
    assert "**30.500**" in md and "**0.1200**" in md and "**0.1100**" in md
    assert "Set5 LPIPS: `gan` is best at 0.1200 (lower is better), -0.2200 against bicubic (0.3400), " \
           "-0.1600 against the next run" in md
    assert "Set5 DISTS: `gan` is best at 0.1100 (lower is better)" in md
    assert "Set5 PSNR-Y: `psnr` is best at 30.500 dB" in md
    report = _parse(html_path)
    (table,) = report.tables
    cols = {title: i for i, title in enumerate(table[0])}
    best = set(report.best)
    assert (2, cols["best Set5 LPIPS ↓"]) in best and (1, cols["best Set5 PSNR-Y"]) in best  # rows: header, psnr, gan
    assert (md_path.parent / "perception_distortion.png").is_file() and "![perception-distortion]" in md
    assert "Perception-distortion" in html_path.read_text()


def test_perception_distortion_plot_is_psnr_against_lpips_per_step(tmp_path):
    import pandas as pd

    from srlab.runs.plots import plot_perception_distortion

    frame = pd.DataFrame({"step": [99, 199], "val/Set5/psnr_y": [29.0, 28.5], "val/Set5/lpips": [0.2, 0.1],
                          "val/Set5/psnr_y_bicubic": [28.4, None], "val/Set5/lpips_bicubic": [0.34, None]})
    figures = []
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr("matplotlib.pyplot.close", figures.append)
    try:
        assert plot_perception_distortion({"gan": frame}, tmp_path / "pd.png") == tmp_path / "pd.png"
        assert plot_perception_distortion({"psnr": frame.drop(columns=["val/Set5/lpips"])}, tmp_path / "no.png") is None
    finally:
        monkeypatch.undo()
    (ax,) = figures[0].axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["gan"].get_xdata()) == [0.2, 0.1] and list(lines["gan"].get_ydata()) == [29.0, 28.5]
    assert list(lines["bicubic"].get_xdata()) == [0.34] and list(lines["bicubic"].get_ydata()) == [28.4]
    assert ax.get_xlabel() == "LPIPS (lower is better)" and "step 99" in [t.get_text() for t in ax.texts]
