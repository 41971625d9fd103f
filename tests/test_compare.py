"""``srlab.compare``: a self-contained HTML and a Markdown report from run and sweep folders."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from srlab.compare import build_report, main
from tests.conftest import TINY_NETS, compose_config


class _Report(HTMLParser):
    """Collects tables (rows of cell texts) and image sources."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.images: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
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


def _fake_run(folder: Path, psnr: list[float], overrides: str = "") -> Path:
    (folder / "csv").mkdir(parents=True)
    rows = ["epoch,step,train/loss,val/psnr,val/ssim,val/psnr_bicubic"]
    rows += [f"{e},{2 * e + 1},0.{5 - e},{p},0.5,20.0" for e, p in enumerate(psnr)]
    (folder / "csv" / "metrics.csv").write_text("\n".join(rows) + "\n")
    (folder / "images").mkdir()
    for epoch in range(len(psnr)):
        Image.new("RGB", (48, 20), (40 * epoch, 90, 200)).save(folder / "images" / f"val_epoch{epoch:03d}.png")
    if overrides:
        (folder / ".hydra").mkdir()
        (folder / ".hydra" / "overrides.yaml").write_text("\n".join(f"- {o}" for o in overrides.split()) + "\n")
    return folder


def test_report_from_a_run_and_a_sweep(tmp_path):
    _fake_run(tmp_path / "runs" / "single", [20.0, 21.0, 20.5])
    sweep = tmp_path / "runs" / "sweep"
    _fake_run(sweep / "0", [19.0], "model=srgan seed=3")
    _fake_run(sweep / "1", [22.0, 23.5], "model=esrgan seed=3")
    html_path, md_path = build_report([tmp_path / "runs" / "single", sweep], tmp_path / "out")
    report = _parse(html_path)
    (table,) = report.tables
    header, *rows = table
    assert header[:4] == ["run", "model", "overrides", "best val/psnr"]
    assert [r[0] for r in rows] == ["single", "sweep/0", "sweep/1"]  # the sweep expanded to its jobs
    assert rows[0][3:5] == ["21.000", "20.500"] and rows[2][2] == "model=esrgan"  # shared seed=3 left out
    assert len(report.images) == 4  # curves + one latest grid per run
    assert all(src.startswith("data:image/png;base64,") for src in report.images)
    assert (tmp_path / "out" / "curves.png").is_file()
    markdown = md_path.read_text()
    assert "| sweep/1 |" in markdown and "![curves](curves.png)" in markdown
    assert (tmp_path / "out" / "images" / "single_val_epoch002.png").is_file()  # the latest grid, beside it


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
