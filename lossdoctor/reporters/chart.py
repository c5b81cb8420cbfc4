"""Annotated loss charts (PNG or SVG) with matplotlib, from the report dict with curves.

matplotlib is an optional extra (``pip install 'lossdoctor[plot]'``); importing this
module without it raises :class:`PlotUnavailable`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from lossdoctor.errors import LossdoctorError

VERDICT_COLOR = {
    "healthy": "#2e7d32",
    "warning": "#f9a825",
    "failing": "#c62828",
    "error": "#c62828",
}
SEVERITY_COLOR = {"error": "#c62828", "warning": "#ef6c00", "info": "#1565c0"}
SHADED = {"plateau", "oscillation", "overfitting", "divergence", "level-shift", "high-flatline"}
MARKED = {"spikes", "non-finite", "masked-non-finite"}
#: A y range wider than this factor is drawn on a log scale.
LOG_SCALE_RANGE = 20.0


class PlotUnavailable(LossdoctorError):
    """matplotlib is not installed."""


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: searchable, smaller
        matplotlib.rcParams["svg.hashsalt"] = "lossdoctor"  # stable ids
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailable("charts need matplotlib: pip install 'lossdoctor[plot]'") from None
    return plt


def require_matplotlib() -> None:
    """Raise :class:`PlotUnavailable` when matplotlib is not installed."""
    _pyplot()


def ema(values: list[float], weight: float) -> list[float]:
    """Return TensorBoard's debiased exponential moving average (NaN points stay NaN)."""
    out: list[float] = []
    last, count = 0.0, 0
    for value in values:
        if not math.isfinite(value):
            out.append(float("nan"))
            continue
        last = last * weight + (1 - weight) * value
        count += 1
        out.append(last / (1 - weight**count))
    return out


def _draw_run(
    ax: Any, run: dict[str, Any], *, smoothing: float, label_prefix: str, color: str | None
) -> list[Any]:
    curves = run.get("curves", {})
    drawn: list[Any] = []
    train = curves.get("train")
    if train:
        steps, values = train["steps"], train["values"]
        ax.plot(
            steps,
            values,
            color=color or "#90caf9",
            alpha=0.45,
            linewidth=0.8,
            label=f"{label_prefix}train (raw)",
        )
        smooth = ema(values, smoothing) if smoothing > 0 else values
        ax.plot(
            steps,
            smooth,
            color=color or "#1565c0",
            linewidth=1.6,
            label=f"{label_prefix}train (smoothed {smoothing:g})",
        )
        bad = [s for s, v in zip(steps, values, strict=True) if not math.isfinite(v)]
        if bad:
            drawn.append(
                ax.scatter(
                    bad,
                    [0.0] * len(bad),
                    marker="x",
                    color=SEVERITY_COLOR["error"],
                    transform=ax.get_xaxis_transform(),
                    clip_on=False,
                    label="NaN/Inf",
                    zorder=5,
                )
            )
    val = curves.get("val")
    if val:
        ax.plot(
            val["steps"],
            val["values"],
            color=color or "#e65100",
            marker="o",
            markersize=3,
            linewidth=1.2,
            label=f"{label_prefix}validation",
        )
    return drawn


def _annotate(ax: Any, run: dict[str, Any]) -> None:
    for f in run.get("findings", []):
        if f.get("superseded_by"):
            continue
        ev, rule, color = f["evidence"], f["rule"], SEVERITY_COLOR[f["severity"]]
        start, end = ev.get("start_step"), ev.get("end_step")
        label = f"{f['code']} {rule} ({f['severity']})"
        if rule in SHADED and isinstance(start, int | float):
            stop = end if isinstance(end, int | float) else ax.get_xlim()[1]
            ax.axvspan(start, stop, color=color, alpha=0.12, label=label)
            if rule == "overfitting":
                ax.axvline(
                    start,
                    color=color,
                    linestyle="--",
                    linewidth=1.2,
                    label=f"best validation step {start:g}: stop here",
                )
            if rule == "plateau":
                ax.axvline(start, color=color, linestyle=":", linewidth=1.0)
        elif rule in MARKED and isinstance(start, int | float):
            peak = ev.get("peak_value")
            marks = ev.get("marks")
            if not marks and isinstance(peak, int | float) and math.isfinite(peak):
                marks = [[start, peak]]
            if marks:
                ax.scatter(
                    [m[0] for m in marks],
                    [m[1] for m in marks],
                    s=60,
                    facecolors="none",
                    edgecolors=color,
                    linewidths=1.5,
                    label=label,
                    zorder=6,
                )
            else:
                ax.axvline(start, color=color, linewidth=1.2, label=label)
        elif rule == "level-shift" and isinstance(start, int | float):
            ax.axvline(start, color=color, linewidth=1.2, label=label)


def render(
    doc: dict[str, Any], path: str, *, smoothing: float = 0.6, title: str | None = None
) -> None:
    """Write the chart of every run in ``doc`` (with curves) to ``path`` (.png or .svg).

    Raises :class:`PlotUnavailable` without matplotlib, :class:`LossdoctorError` for
    another extension.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in (".png", ".svg"):
        raise LossdoctorError("the chart's file name must end in .png or .svg", path=path)
    try:
        _save(doc, path, smoothing=smoothing, title=title, dpi=110)
    except OSError as exc:
        raise LossdoctorError(f"cannot write chart ({exc.strerror})", path=path) from None


def figure(doc: dict[str, Any], *, smoothing: float = 0.6, title: str | None = None) -> Any:
    """Return a matplotlib figure of the runs in ``doc`` (one chart; several runs overlay)."""
    plt = _pyplot()
    runs = [r for r in doc["runs"] if r.get("verdict") != "error"]
    fig, ax = plt.subplots(figsize=(10, 5.2))
    palette = [None, "#6a1b9a", "#00838f", "#558b2f", "#ad1457"]
    lows, highs = [], []
    for i, run in enumerate(runs):
        prefix = f"{Path(run['source']).name}: " if len(runs) > 1 else ""
        _draw_run(
            ax, run, smoothing=smoothing, label_prefix=prefix, color=palette[i % len(palette)]
        )
        for curve in (run.get("curves", {}).get(k) for k in ("train", "val")):
            if curve:
                finite = [v for v in curve["values"] if math.isfinite(v)]
                if finite:
                    lows.append(min(finite))
                    highs.append(max(finite))
    if lows and min(lows) > 0 and max(highs) / min(lows) > LOG_SCALE_RANGE:
        ax.set_yscale("log")
    xs = [s for r in runs for c in r.get("curves", {}).values() for s in c["steps"]]
    if xs and min(xs) < max(xs):
        ax.set_xlim(min(xs), max(xs))
    if len(runs) == 1:
        _annotate(ax, runs[0])
        lr = runs[0].get("curves", {}).get("lr")
        if lr:
            ax2 = ax.twinx()
            ax2.plot(
                lr["steps"],
                lr["values"],
                color="#9e9e9e",
                linewidth=1.0,
                linestyle="-.",
                label="learning rate",
            )
            ax2.set_ylabel("learning rate", color="#757575")
            ax2.legend(loc="upper center", fontsize=8, frameon=False)
    comparison = runs[0].get("comparison") if runs else None
    if comparison:
        ax.set_title(f"compared with {comparison['reference']}", fontsize=9, loc="right")
        ref = comparison.get("reference_curve")
        if ref:
            smooth = ema(ref["values"], smoothing) if smoothing > 0 else ref["values"]
            ax.plot(
                ref["steps"], smooth, color="#616161", linewidth=1.4, label="reference (smoothed)"
            )
            band = comparison.get("band_pct")
            if isinstance(band, int | float):
                upper = [v * (1 + band / 100) for v in smooth]
                ax.fill_between(
                    ref["steps"],
                    smooth,
                    upper,
                    color="#9e9e9e",
                    alpha=0.25,
                    label=f"tolerance band (+{band:.1f}%)",
                )
    x_kind = runs[0]["series"].get("train", {}).get("x", "step") if runs else "step"
    ax.set_xlabel(x_kind)
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.25)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), fontsize=8, loc="upper right", framealpha=0.85)
    if title is None and runs:
        verdicts = ", ".join(f"{Path(r['source']).name}: {r['verdict'].upper()}" for r in runs)
        title = f"lossdoctor · {verdicts}"
    color = VERDICT_COLOR[runs[0]["verdict"]] if len(runs) == 1 else "black"
    fig.suptitle(title or "lossdoctor", color=color, fontsize=12, fontweight="bold")
    fig.tight_layout()
    return fig


def svg_text(doc: dict[str, Any], *, smoothing: float = 0.6) -> str:
    """Return the chart as SVG text (for the HTML report)."""
    import io

    buffer = io.StringIO()
    _save(doc, buffer, smoothing=smoothing, format="svg")
    return buffer.getvalue()


def _save(
    doc: dict[str, Any], target: Any, *, smoothing: float, title: str | None = None, **options: Any
) -> None:
    """Draw the figure of ``doc``, save it to ``target`` (a path or a file) and close it."""
    plt = _pyplot()
    fig = figure(doc, smoothing=smoothing, title=title)
    try:
        fig.savefig(target, bbox_inches="tight", **options)
    finally:
        plt.close(fig)
