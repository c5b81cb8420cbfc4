"""Charts (PNG, SVG), the HTML report, and the terminal chart's finding marks."""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from lossdoctor import synth as curves
from lossdoctor.api import diagnose_many
from lossdoctor.cli import app

from conftest import write_csv, write_curve

pytest.importorskip("matplotlib")
from lossdoctor.reporters import chart, html

FAMILIES = {
    "healthy": ("healthy", {}, None),
    "spikes": ("spiky", {"ratio": 4.0}, "LD201 spikes"),
    "oscillation": ("oscillating", {"swing": 0.5}, "LD202 oscillation"),
    "flatline": ("flat", {}, "LD301 high-flatline"),
    "plateau": ("plateau", {}, "LD302 plateau"),
    "divergence": ("diverging", {"factor": 4.0}, "LD203 divergence"),
    "non-finite": ("with_nan", {}, "LD101 non-finite"),
    "overfitting": ("overfitting_pair", {"rise": 0.3}, "LD401 overfitting"),
}


def _log(tmp_path, family):
    shape, params, _ = FAMILIES[family]
    series = curves.make(shape, **params)
    steps, values = series["train"]
    if "val" in series:
        val_steps, val_values = series["val"]
        val_at = dict(zip(val_steps.tolist(), val_values.tolist(), strict=True))
        column = [val_at.get(float(s)) for s in steps]
        return write_csv(
            tmp_path / f"{family}.csv", {"step": steps, "loss": values, "val_loss": column}
        )
    return write_curve(tmp_path / f"{family}.csv", steps, values)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_family_renders_to_png_and_svg_with_its_annotations(tmp_path, family):
    doc = diagnose_many([str(_log(tmp_path, family))]).to_dict(curves=True)
    png, svg = tmp_path / "c.png", tmp_path / "c.svg"
    chart.render(doc, str(png))
    chart.render(doc, str(svg))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    root = ET.fromstring(svg.read_text())
    text = " ".join(t for t in root.itertext())
    assert doc["runs"][0]["verdict"].upper() in text
    label = FAMILIES[family][2]
    if label:
        assert label in text


def test_several_runs_get_one_panel_each_with_their_findings(tmp_path, runner):
    a, b = _log(tmp_path, "healthy"), _log(tmp_path, "plateau")
    out = tmp_path / "both.svg"
    result = runner.invoke(app, ["plot", "-o", str(out), str(a), str(b)])
    assert result.exit_code == 0
    text = out.read_text()
    assert f"{a}: HEALTHY" in text
    assert "LD302 plateau" in text  # the second run's finding, in its own panel
    doc = diagnose_many([str(a), str(b)]).to_dict(curves=True)
    fig = chart.figure(doc)
    panels = [ax for ax in fig.axes if ax.get_ylabel() == "loss"]
    assert len(panels) == 2


def _bbox_overlap(one, two) -> bool:
    return one.x0 < two.x1 and two.x0 < one.x1 and one.y0 < two.y1 and two.y0 < one.y1


@pytest.mark.parametrize("family", ["overfitting", "spikes", "plateau"])
def test_the_legend_is_never_over_the_data(tmp_path, family):
    doc = diagnose_many([str(_log(tmp_path, family))]).to_dict(curves=True)
    fig = chart.figure(doc)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is not None:
            assert not _bbox_overlap(legend.get_window_extent(renderer), ax.get_window_extent())


def test_log_and_linear_y_and_axis_limits(tmp_path, runner):
    log = _log(tmp_path, "healthy")
    doc = diagnose_many([str(log)]).to_dict(curves=True)
    loss_axes = [
        ax
        for ax in chart.figure(doc, axes=chart.Axes(y_scale="log")).axes
        if ax.get_ylabel() == "loss"
    ]
    assert loss_axes[0].get_yscale() == "log"
    fig = chart.figure(
        doc, axes=chart.Axes(y_scale="linear", x_limits=(100, 2000), y_limits=(0, 3))
    )
    ax = next(a for a in fig.axes if a.get_ylabel() == "loss")
    assert ax.get_yscale() == "linear"
    assert ax.get_xlim() == (100, 2000)
    assert ax.get_ylim() == (0, 3)
    out = tmp_path / "c.png"
    args = ["plot", "-o", str(out), "--log-y", "--xlim", "100:", "--ylim", ":3", str(log)]
    assert runner.invoke(app, args).exit_code == 0
    bad = runner.invoke(app, ["plot", "-o", str(out), "--xlim", "abc", str(log)])
    assert bad.exit_code == 2


def test_overlapping_findings_each_get_a_strip_of_their_own(tmp_path):
    steps, values = curves.diverging(n=800, factor=3.0)
    values = values * np.exp(np.random.default_rng(3).normal(0, 0.35, 800))
    doc = diagnose_many([str(write_curve(tmp_path / "o.csv", steps, values))]).to_dict(curves=True)
    shaded = {f["code"] for f in doc["runs"][0]["findings"] if f["rule"] in chart.SHADED}
    assert len(shaded) >= 2
    fig = chart.figure(doc)
    ax = next(a for a in fig.axes if a.get_ylabel() == "loss")
    labels = [t.get_text().strip() for t in ax.texts]
    for code in shaded:
        assert any(label.startswith(code) for label in labels)
    top = ax.get_ylim()[1]
    finite = [v for v in doc["runs"][0]["curves"]["train"]["values"] if np.isfinite(v)]
    assert max(finite) < top  # the strips sit above every point


def test_check_plot_and_bad_extension(tmp_path, runner):
    log = _log(tmp_path, "spikes")
    result = runner.invoke(app, ["check", "--plot", str(tmp_path / "c.png"), str(log)])
    assert (tmp_path / "c.png").is_file()
    result = runner.invoke(app, ["plot", "-o", str(tmp_path / "c.gif"), str(log)])
    assert result.exit_code == 2
    assert "must end in .png or .svg" in result.stderr


def test_plot_without_matplotlib_names_the_extra(tmp_path):
    log = _log(tmp_path, "healthy")
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        f"from lossdoctor.cli import main; sys.argv = ['lossdoctor', 'plot', '-o', 'x.png', {str(log)!r}]; main()"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert b"pip install 'lossdoctor[plot]'" in proc.stderr


def test_large_runs_are_decimated_but_keep_spikes_and_nan(tmp_path):
    steps, values = curves.healthy(300_000, noise=0.02)
    values[123_456] *= 8
    values[200_000] = np.nan
    report = diagnose_many([str(write_curve(tmp_path / "big.csv", steps, values))])
    drawn = report.runs[0].curves["train"][1]
    assert len(drawn) <= 4000
    assert max(v for v in drawn if v == v) == pytest.approx(values[123_456])
    assert any(v != v for v in drawn)


def test_html_report_is_self_contained(tmp_path, runner):
    log = _log(tmp_path, "overfitting")
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["check", "-f", f"html:{out}", "--fail-on", "never", str(log)])
    assert result.exit_code == 0
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "<svg" in page
    assert "LD401" in page
    for fetch in ("<script src", "<link ", "@import", "url(http"):
        assert fetch not in page


def test_html_render_escapes_everything():
    doc = {
        "version": "1",
        "runs": [{"source": "<x>.csv", "verdict": "error", "error": "<b>bad</b>"}],
    }
    page = html.render(doc)
    assert "<b>bad</b>" not in page
    assert "&lt;b&gt;bad&lt;/b&gt;" in page


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium is not installed")
def test_html_report_renders_in_headless_chromium(tmp_path, runner):
    out = tmp_path / "report.html"
    runner.invoke(
        app, ["check", "-f", f"html:{out}", "--fail-on", "never", str(_log(tmp_path, "spikes"))]
    )
    shot = tmp_path / "shot.png"
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,900",
         out.as_uri()],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_terminal_chart_marks_findings(tmp_path, runner):
    result = runner.invoke(app, ["check", "--fail-on", "never", str(_log(tmp_path, "spikes"))])
    mark_line = next(
        line for line in result.stdout.splitlines() if "^" in line and "LD201 @" in line
    )
    assert mark_line.strip().startswith("^")


def test_compare_plot_draws_reference_and_band(tmp_path, runner):
    write_curve(tmp_path / "ref.csv", *curves.healthy(800, seed=1))
    write_curve(tmp_path / "cand.csv", *curves.healthy(800, seed=2, end=1.5))
    out = tmp_path / "cmp.svg"
    result = runner.invoke(
        app, ["compare", "--plot", str(out), str(tmp_path / "ref.csv"), str(tmp_path / "cand.csv")]
    )
    assert result.exit_code == 1
    text = out.read_text()
    assert "reference (smoothed)" in text
    assert "tolerance band" in text
    doc = runner.invoke(
        app, ["compare", "-f", "json", str(tmp_path / "ref.csv"), str(tmp_path / "cand.csv")]
    ).stdout
    assert "reference_curve" not in doc


def test_the_title_of_many_panels_stays_clear_of_them(tmp_path):
    # five runs: the title listed every run's name and verdict, ran past the figure's
    # edges and over the first panel's own title
    families = ["healthy", "spikes", "plateau", "divergence", "overfitting"]
    paths = [str(_log(tmp_path, family)) for family in families]
    doc = diagnose_many(paths).to_dict(curves=True)
    fig = chart.figure(doc)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    title = fig._suptitle.get_window_extent(renderer)
    frame = fig.bbox
    assert frame.x0 <= title.x0
    assert title.x1 <= frame.x1
    assert fig._suptitle.get_text().startswith("lossdoctor · 5 runs: ")
    for ax in fig.axes:
        for text in (ax.title, ax._left_title, ax._right_title):
            if text.get_text():
                assert not _bbox_overlap(text.get_window_extent(renderer), title)
