"""Annotated loss charts (PNG or SVG) with matplotlib, from the report dict with curves.

matplotlib is an optional extra (``pip install 'lossdoctor[plot]'``); importing this
module without it raises :class:`PlotUnavailable`.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lossdoctor.errors import LossdoctorError
from lossdoctor.report import run_name

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


#: Height of one finding's strip at the top of a panel (share of the axes).
STRIP_HEIGHT = 0.045
#: Hatches that tell overlapping shaded findings apart.
HATCHES = ("///", "\\\\\\", "...", "xx", "||")


def _annotate(ax: Any, run: dict[str, Any]) -> int:
    """Draw every counted finding of ``run`` where it is: shaded findings as a light span
    (each with its own hatch) and a labelled strip of its own at the top of the panel,
    so that overlapping ranges stay readable; spikes and NaN as marks.  Return the number
    of strips drawn."""
    strips = 0
    for f in run.get("findings", []):
        if f.get("superseded_by"):
            continue
        ev, rule, color = f["evidence"], f["rule"], SEVERITY_COLOR[f["severity"]]
        start, end = ev.get("start_step"), ev.get("end_step")
        label = f"{f['code']} {rule} ({f['severity']})"
        if rule in SHADED and isinstance(start, int | float):
            stop = end if isinstance(end, int | float) else ax.get_xlim()[1]
            hatch = HATCHES[strips % len(HATCHES)]
            ax.axvspan(start, stop, facecolor=color, alpha=0.07, edgecolor="none")
            ax.axvspan(start, stop, facecolor="none", edgecolor=color, alpha=0.25,
                       hatch=hatch, linewidth=0, label=label)  # fmt: skip
            top = 1 - strips * (STRIP_HEIGHT + 0.01)
            ax.axvspan(start, stop, ymin=top - STRIP_HEIGHT, ymax=top, color=color, alpha=0.55)
            ax.text(start, top - STRIP_HEIGHT / 2, f" {f['code']} {rule}",
                    transform=ax.get_xaxis_transform(), fontsize=7, va="center", ha="left",
                    color="white", fontweight="bold", clip_on=True)  # fmt: skip
            strips += 1
            if rule == "overfitting":
                ax.axvline(
                    start,
                    color=color,
                    linestyle="--",
                    linewidth=1.2,
                    label=f"best logged validation step {start:g}: keep this checkpoint",
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
    return strips


def _headroom(ax: Any, strips: int) -> None:
    """Raise the top of the loss axis so the finding strips sit above every point."""
    if not strips:
        return
    share = strips * (STRIP_HEIGHT + 0.01) + 0.01
    low, high = ax.get_ylim()
    if ax.get_yscale() == "log" and low > 0:
        ax.set_ylim(low, low * (high / low) ** (1 / (1 - share)))
    else:
        ax.set_ylim(low, low + (high - low) / (1 - share))


def render(
    doc: dict[str, Any],
    path: str,
    *,
    smoothing: float = 0.6,
    title: str | None = None,
    axes: Axes | None = None,
) -> None:
    """Write the chart of every run in ``doc`` (with curves) to ``path`` (.png or .svg);
    ``axes`` sets the y scale and the axis limits.

    Raises :class:`PlotUnavailable` without matplotlib, :class:`LossdoctorError` for
    another extension.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in (".png", ".svg"):
        raise LossdoctorError("the chart's file name must end in .png or .svg", path=path)
    try:
        _save(doc, path, smoothing=smoothing, title=title, axes=axes, dpi=110)
    except OSError as exc:
        raise LossdoctorError(f"cannot write chart ({exc.strerror})", path=path) from None


@dataclass(frozen=True)
class Axes:
    """How the axes are drawn: the y scale (``log``, ``linear`` or ``auto``: log when
    the values span more than 20x) and limits (None: fitted to the data)."""

    y_scale: str = "auto"
    x_limits: tuple[float | None, float | None] = (None, None)
    y_limits: tuple[float | None, float | None] = (None, None)


def _values_range(run: dict[str, Any]) -> tuple[float, float] | None:
    finite = [
        v
        for key in ("train", "val")
        for v in (run.get("curves", {}).get(key) or {"values": []})["values"]
        if math.isfinite(v)
    ]
    return (min(finite), max(finite)) if finite else None


def _panel(ax: Any, run: dict[str, Any], *, smoothing: float, axes: Axes, many: bool) -> None:
    """Draw one run in its own panel: curves, findings, learning rate, comparison; the
    legend below the panel, never over the data."""
    _draw_run(ax, run, smoothing=smoothing, label_prefix="", color=None)
    span = _values_range(run)
    log = axes.y_scale == "log" or (
        axes.y_scale == "auto" and span is not None and span[0] > 0
        and span[1] / span[0] > LOG_SCALE_RANGE
    )  # fmt: skip
    if log and span is not None and span[0] > 0:
        ax.set_yscale("log")
    xs = [s for c in run.get("curves", {}).values() for s in c["steps"]]
    if xs and min(xs) < max(xs):
        ax.set_xlim(min(xs), max(xs))
    if axes.x_limits != (None, None):
        ax.set_xlim(*axes.x_limits)
    if axes.y_limits != (None, None):
        ax.set_ylim(*axes.y_limits)
    strips = _annotate(ax, run)
    if axes.y_limits == (None, None):
        _headroom(ax, strips)
    extra: list[tuple[Any, str]] = []
    lr = run.get("curves", {}).get("lr")
    if lr:
        ax2 = ax.twinx()
        (line,) = ax2.plot(lr["steps"], lr["values"], color="#9e9e9e", linewidth=1.0,
                           linestyle="-.", label="learning rate")  # fmt: skip
        ax2.set_ylabel("learning rate", color="#757575")
        extra.append((line, "learning rate"))
    comparison = run.get("comparison")
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
                ax.fill_between(ref["steps"], smooth, upper, color="#9e9e9e", alpha=0.25,
                                label=f"tolerance band (+{band:.1f}%)")  # fmt: skip
    ax.set_xlabel(run["series"].get("train", run["series"].get("val", {})).get("x", "step"))
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.25)
    if many:
        ax.set_title(f"{run_name(run)}: {run['verdict'].upper()}", fontsize=10, loc="left",
                     color=VERDICT_COLOR[run["verdict"]], fontweight="bold")  # fmt: skip
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    unique.update({label: handle for handle, label in extra})
    ax.legend(unique.values(), unique.keys(), fontsize=8, loc="upper center",
              bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)  # fmt: skip


#: Height kept for the figure's title above several panels (inches).
TITLE_INCHES = 0.45


def figure(
    doc: dict[str, Any],
    *,
    smoothing: float = 0.6,
    title: str | None = None,
    axes: Axes | None = None,
) -> Any:
    """Return a matplotlib figure of the runs in ``doc``: one panel per run (small
    multiples, each on its own x axis, with its findings), the legend of each below it."""
    plt = _pyplot()
    axes = axes or Axes()
    runs = [r for r in doc["runs"] if r.get("verdict") != "error"]
    count = max(1, len(runs))
    fig, panels = plt.subplots(count, 1, figsize=(10, 4.6 * count + 0.6), squeeze=False)
    for ax, run in zip(panels[:, 0], runs, strict=False):
        _panel(ax, run, smoothing=smoothing, axes=axes, many=len(runs) > 1)
    if title is None and len(runs) == 1:
        title = f"lossdoctor · {Path(run_name(runs[0])).name}: {runs[0]['verdict'].upper()}"
    elif title is None and runs:
        # each panel names its run and verdict: the title counts them (a list of every
        # run's name ran past the figure's edges and over the first panel's title)
        counts = Counter(r["verdict"] for r in runs)
        verdicts = ", ".join(f"{n} {v}" for v, n in counts.items())
        title = f"lossdoctor · {len(runs)} runs: {verdicts}"
    color = VERDICT_COLOR[runs[0]["verdict"]] if len(runs) == 1 else "black"
    fig.suptitle(title or "lossdoctor", color=color, fontsize=12, fontweight="bold")
    # panels with titles of their own go below the figure's title, not under it
    # (tight_layout leaves it no room above a panel's title)
    top = 1.0 - TITLE_INCHES / fig.get_figheight() if len(runs) > 1 else 1.0
    fig.tight_layout(rect=(0.0, 0.0, 1.0, top))
    return fig


def svg_text(doc: dict[str, Any], *, smoothing: float = 0.6) -> str:
    """Return the chart as SVG text (for the HTML report)."""
    import io

    buffer = io.StringIO()
    _save(doc, buffer, smoothing=smoothing, format="svg")
    return buffer.getvalue()


def _save(
    doc: dict[str, Any],
    target: Any,
    *,
    smoothing: float,
    title: str | None = None,
    axes: Axes | None = None,
    **options: Any,
) -> None:
    """Draw the figure of ``doc``, save it to ``target`` (a path or a file) and close it."""
    plt = _pyplot()
    fig = figure(doc, smoothing=smoothing, title=title, axes=axes)
    try:
        fig.savefig(target, bbox_inches="tight", **options)
    finally:
        plt.close(fig)
