"""The Jupyter view of a report, rendered by a real browser (headless Chromium) and
checked on the screenshot: the verdict in red, the chart drawn, the fixes listed."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

import lossdoctor

from conftest import ROOT

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
#: A notebook output cell around the report, as Jupyter nests it (with styles of its own).
CELL = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><style>body{{font-family:serif;"
    "margin:0;padding:8px}} p.outside{{color:rgb(0,128,0)}}</style></head><body>"
    "<p class='outside'>notebook text</p><div class='output'>{report}</div></body></html>"
)


def screenshot(html: str, tmp_path) -> object:
    from PIL import Image

    page, png = tmp_path / "cell.html", tmp_path / "cell.png"
    page.write_text(html, encoding="utf-8")
    subprocess.run(
        [BROWSER, *FLAGS, "--window-size=1200,1800", f"--screenshot={png}", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    return Image.open(png).convert("RGB")


def share(image, color, tolerance=40) -> float:
    """Return the share of pixels within ``tolerance`` of ``color`` (per channel)."""
    pixels = np.asarray(image, dtype=np.int16)
    near = (np.abs(pixels - np.asarray(color, dtype=np.int16)) <= tolerance).all(axis=-1)
    return float(near.mean())


@pytest.mark.skipif(BROWSER is None, reason="headless Chromium is not installed")
def test_notebook_view_renders_verdict_chart_and_fixes(tmp_path, monkeypatch):
    pytest.importorskip("PIL")
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(ROOT)
    report = lossdoctor.diagnose("examples/divergence_nan.csv")
    image = screenshot(CELL.format(report=report._repr_html_()), tmp_path)
    assert share(image, (0xC6, 0x28, 0x28)) > 0.0005  # FAILING, error rows, the NaN marks
    assert share(image, (0x15, 0x65, 0xC0)) > 0.0005  # the smoothed training curve (SVG)
    assert share(image, (0, 128, 0), tolerance=10) > 0  # the notebook's own styles survive
    assert share(image, (255, 255, 255), tolerance=5) < 0.97  # not a blank page
