"""Figures, drawn from result CSVs (never from live simulations).

matplotlib is imported here and nowhere else. Every figure is saved as PNG and SVG, with
labelled axes, units and a legend, readable in print.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker  # noqa: F401 (matplotlib.ticker.FormatStrFormatter below)
from matplotlib.figure import Figure

# No pyplot and no backend chosen: figures are drawn on their own canvas and written to
# files, so importing this module (or running a study that draws) leaves a notebook's
# backend (%matplotlib inline) and its own figures alone.

from .provenance import atomic_write_many, read_csv

# one colour per category, stable across figures; tenant work is the calm one
CATEGORY_COLORS = {
    "tenant": "#4c9a5b",
    "exit": "#d1495b",
    "hypervisor": "#edae49",
    "emulation": "#8e3b8a",
    "backend": "#00798c",
    "copy": "#9c6644",  # brown: apart from tenant's green, so a thin copy share is not read as tenant
    "poll": "#f28f3b",
    "idle": "#d9d9d9",
    "reserved_idle": "#9e9e9e",
    "card": "#2b83ba",  # an offload card's cycles (off the host)
}
EXTRA_COLORS = ["#30638e", "#a05195", "#665191", "#ffa600", "#2f4b7c"]
ARCH_STYLE = {
    "bare-metal": ("#000000", "-"), "nitro": ("#4c9a5b", "-"), "sriov-posted": ("#66a182", "--"),
    "sriov": ("#edae49", "--"), "xen-aws-2017": ("#30638e", ":"), "xen-aws-2013": ("#00798c", ":"),
    "kvm-virtio": ("#8e3b8a", "-."), "xen-pv": ("#d1495b", "-"), "emulated": ("#7f7f7f", "-."),
}
# a marker per architecture; the lines that coincide with another's (bare metal under nitro
# and sriov-posted, xen-aws-2013 under xen-aws-2017) get larger hollow ones drawn on top, so
# every line in the legend can be seen
ARCH_MARKER = {
    "bare-metal": "s", "nitro": "o", "sriov-posted": "^", "sriov": "v", "xen-aws-2017": "D",
    "xen-aws-2013": "o", "kvm-virtio": "P", "xen-pv": "o", "emulated": "X",
}
HOLLOW = ("bare-metal", "xen-aws-2013")


# lines that are not architectures (a sweep's --by values): a colour each, then, past the
# palette, another dash and marker, so that no two of up to len(palette) x 4 lines look alike
LINE_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                "#bcbd22", "#17becf")
LINE_DASHES = ("-", "--", "-.", ":")
LINE_MARKERS = ("o", "s", "^", "D")


def _line_style(a: str, i: int) -> tuple[str, Any, dict[str, Any]]:
    """Colour, line style and marker keywords of the i-th line, labelled a."""
    if a in ARCH_STYLE:
        color, ls = ARCH_STYLE[a]
        return color, ls, _marker(a)
    k, n = divmod(i, len(LINE_PALETTE))
    return LINE_PALETTE[n], LINE_DASHES[k % len(LINE_DASHES)], {"marker": LINE_MARKERS[k % len(LINE_MARKERS)],
                                                                 "markersize": 3}


def _marker(a: str, size: float = 3) -> dict[str, Any]:
    """matplotlib keywords for architecture a's marker."""
    if a in HOLLOW:
        return {"marker": ARCH_MARKER[a], "markersize": size + 4, "markerfacecolor": "none", "zorder": 3}
    return {"marker": ARCH_MARKER.get(a, "o"), "markersize": size}


def _color(cat: str, i: int) -> str:
    return CATEGORY_COLORS.get(cat, EXTRA_COLORS[i % len(EXTRA_COLORS)])


def _reads_table(draw: Any) -> Any:
    """A figure drawn from a results CSV: a missing file, or a table without the columns
    the figure reads (another figure's CSV, a sweep's), is a ModelError naming the file and
    the column (it was a bare KeyError or FileNotFoundError)."""
    import functools

    @functools.wraps(draw)
    def wrapped(csv_path: Path | str, png_path: Path | str, *args: Any, **kwargs: Any) -> None:
        from ._core import ModelError

        if not Path(csv_path).is_file():
            raise ModelError("no such file", file=str(csv_path))
        table = {"sensitivity_tornado": "sensitivity"}.get(draw.__name__, draw.__name__.replace("_", "-"))
        try:
            return draw(csv_path, png_path, *args, **kwargs)
        except KeyError as e:
            raise ModelError(f"has no column {e.args[0]!r}: not the table {draw.__name__}() draws (vemu reproduce "
                             f"writes it as results/{table}.csv)", file=str(csv_path)) from None
        except ModelError:  # (a ValueError too) already one line naming the file
            raise
        except ValueError as e:  # a NaN or blank cell where the figure needs a number (axis limits, a log scale)
            raise ModelError(f"a value {draw.__name__}() needs is not a finite number (a NaN, an infinity or a "
                             f"blank cell; vemu reproduce writes results/{table}.csv whole): "
                             f"{str(e).splitlines()[0] if str(e) else type(e).__name__}", file=str(csv_path)) from None

    return wrapped


def _subplots(*args: Any, figsize: tuple[float, float], **kwargs: Any) -> tuple[Figure, Any]:
    """pyplot.subplots without pyplot: a Figure of its own and its axes."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)


def _save(fig: Figure, png: Path | str) -> None:
    import io

    png = Path(png)
    files = {}
    # stable SVG ids (the same data gives the same bytes), set for these writes only
    with matplotlib.rc_context({"svg.hashsalt": "vemu"}):
        for path, fmt in ((png, "png"), (png.with_suffix(".svg"), "svg")):
            buf = io.BytesIO()
            fig.savefig(buf, format=fmt, dpi=150, bbox_inches="tight",
                        metadata={"Date": None} if fmt == "svg" else None)
            files[path] = buf.getvalue()
    atomic_write_many(files)  # the pair together: never a new PNG beside an old SVG


@_reads_table
def headline(csv_path: Path | str, png_path: Path | str) -> None:
    """Usable fraction per architecture, as stacked bars of host-cycle categories."""
    header, rows, prov = read_csv(csv_path)
    cats = header[3:]
    rows = sorted(rows, key=lambda r: float(r["usable_fraction"]))
    fig, ax = _subplots(figsize=(8.5, 0.45 * len(rows) + 1.8))
    names = [r["architecture"] for r in rows]
    left = [0.0] * len(rows)
    for i, c in enumerate(cats):
        vals = [float(r[c]) for r in rows]
        if max(vals) <= 0:
            continue
        ax.barh(names, vals, left=left, color=_color(c, i), label=c.replace("_", " "), edgecolor="white", linewidth=0.5)
        left = [a + b for a, b in zip(left, vals)]
    for y, r in enumerate(rows):
        ax.text(float(r["tenant"]) / 2, y, f"{float(r['usable_fraction']):.1%}", va="center", ha="center",
                fontsize=8, color="white", fontweight="bold")
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of all host cycles (whole host, reserved cores included)")
    ax.set_title("Where an EC2-class host's cycles go (xeon-2017, cloud-mix, saturated)")
    ax.legend(ncol=min(5, len(cats)), loc="upper center", bbox_to_anchor=(0.5, -0.18 - 0.02 * (len(rows) < 6)),
              fontsize=8, frameon=False)
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    _save(fig, png_path)


@_reads_table
def usable_vs_io(csv_path: Path | str, png_path: Path | str) -> None:
    """Usable fraction against I/O intensity, one line per architecture."""
    header, rows, prov = read_csv(csv_path)
    archs: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        archs.setdefault(r["architecture"], []).append((float(r["packets_per_mcycle"]), float(r["usable_fraction"])))
    fig, ax = _subplots(figsize=(7.5, 4.8))
    for a, pts in archs.items():
        pts.sort()
        color, ls = ARCH_STYLE.get(a, (None, "-"))
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color=color, linestyle=ls, label=a, **_marker(a))
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("I/O intensity: packets per million cycles of application work (packet-echo)")
    ax.set_ylabel("usable fraction of host cycles")
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_title("Compute-bound (left) to packet-bound (right), xeon-2017")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, ncol=2, loc="lower left")
    _save(fig, png_path)


@_reads_table
def sensitivity_tornado(csv_path: Path | str, png_path: Path | str, *, architectures: list[str] | None = None,
                        top: int = 12) -> None:
    """Tornado charts of the usable fraction, one panel per architecture (sensitivity.csv).

    Each row is one uncertain number: a bar from the baseline to the usable fraction at the
    low end of its range, one to the high end; rows sorted by swing, largest on top. A
    whisker at a bar's end is +- 2 sd of that row's swing under common random numbers (its
    noise, measured per row: it differs by row up to 100x); a row without one was not probed.
    """
    import math

    header, rows, prov = read_csv(csv_path)
    by_arch: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_arch.setdefault(r["architecture"], []).append(r)
    archs = [a for a in (architectures or list(by_arch)) if a in by_arch]
    ncols = 2 if len(archs) > 1 else 1
    nrows = math.ceil(len(archs) / ncols)
    heights = [min(top, max(len(by_arch[a]) for a in archs[i * ncols:(i + 1) * ncols])) for i in range(nrows)]
    fig_h = sum(0.3 * h + 1.3 for h in heights) + 0.6
    fig = Figure(figsize=(7.2 * ncols, fig_h))
    gs = fig.add_gridspec(nrows, ncols, height_ratios=[0.3 * h + 1.3 for h in heights], hspace=0.55, wspace=0.95,
                          top=1.0 - 0.55 / fig_h, bottom=0.45 / fig_h)
    c_low, c_high = "#30638e", "#d1495b"
    whiskered = False
    for k, a in enumerate(archs):
        ax = fig.add_subplot(gs[k // ncols, k % ncols])
        rs = sorted(by_arch[a], key=lambda r: float(r["swing"]), reverse=True)
        shown, rest = rs[:top], len(rs) - min(top, len(rs))
        base = float(rs[0]["baseline"])
        noise = [float(r.get("noise") or "nan") for r in shown]
        lo = [float(r["usable_at_low"]) for r in shown]
        hi = [float(r["usable_at_high"]) for r in shown]
        span = max([abs(v - base) + 2 * (0.0 if math.isnan(e) else e) for v, e in zip(lo + hi, noise + noise)]
                   + [1e-4])
        fmt = "{:.2%}" if span < 0.01 else "{:.1%}"
        n = len(shown)
        ys = [n - 1 - i for i in range(n)]
        ax.barh([y + 0.2 for y in ys], [v - base for v in lo], left=base, height=0.38, color=c_low,
                label="number at the low end of its range")
        ax.barh([y - 0.2 for y in ys], [v - base for v in hi], left=base, height=0.38, color=c_high,
                label="number at the high end of its range")
        for y, v1, v2, e in zip(ys, lo, hi, noise):
            if e > 0:  # NaN (not probed) compares false
                ax.errorbar([v1, v2], [y + 0.2, y - 0.2], xerr=2 * e, fmt="none", ecolor="black", elinewidth=0.8,
                            capsize=2, label=None if whiskered else
                            "± 2 sd of the row's swing (same-seed pairs, across seeds)")
                whiskered = True
        ax.axvline(base, color="black", lw=1.0)
        for y, v1, v2, e in zip(ys, lo, hi, noise):
            pad = 0.02 * span + (2 * e if e > 0 else 0.0)  # past the whisker
            for yy, v in ((y + 0.2, v1), (y - 0.2, v2)):
                if abs(v - base) > 0.02 * span:
                    ax.text(v + (pad if v >= base else -pad), yy, fmt.format(v), va="center",
                            ha="left" if v >= base else "right", fontsize=6.5)
        labels = [f"{r['parameter']}  [{float(r['low_value']):g} – {float(r['high_value']):g}]" for r in shown]
        ax.set_yticks(ys)
        ax.set_yticklabels(labels, fontsize=7)
        ax.set_ylim(-0.7, n - 0.3)
        ax.set_xlim(base - 1.3 * span, min(base + 1.3 * span, 1.0 + 0.08 * span))  # usable fraction <= 1
        ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=2 if span < 0.01 else 1))
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(True, axis="x", alpha=0.3)
        ax.set_title(f"{a}: baseline {fmt.format(base)}" + (f"  ({rest} more, smaller swings)" if rest else ""),
                     fontsize=9, loc="left")
        ax.set_xlabel("usable fraction of host cycles", fontsize=7.5)
    legend: dict[str, Any] = {}
    for ax in fig.axes:  # the whisker's label sits on the first panel that has one
        for h, lab in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(lab, h)
    fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=3, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 1.0 - 0.05 / fig_h))
    try:
        window = json.loads(prov.get("options", "{}")).get("duration_s")
    except (ValueError, AttributeError):
        window = None
    fig.suptitle("Sensitivity of the headline (xeon-2017, cloud-mix, saturated): one number at a time, "
                 "common random numbers" + (f", {window:g} s windows" if window else ""), fontsize=10,
                 y=1.0 + 0.35 / fig_h)
    _save(fig, png_path)


def _by_arch(rows: list[dict[str, str]], x: str) -> dict[str, list[dict[str, float]]]:
    out: dict[str, list[dict[str, float]]] = {}
    for r in rows:
        out.setdefault(r["architecture"], []).append({k: float(v) for k, v in r.items() if k != "architecture"})
    for pts in out.values():
        pts.sort(key=lambda p: p[x])
    return out


def _err(v: float) -> float:
    return 0.0 if v != v else v  # NaN (one replication) draws no bar


def _yerr(pts: list[dict[str, float]], y: str, flags: list[bool], *, scale: float = 1.0, ci: str = "_ci") -> Any:
    """The error bars of y over ``pts``: from its ``y_lo`` and ``y_hi`` columns where the
    table has them (a percentile's interval by sectioning is not symmetric about its point),
    else ± the ``y + ci`` half-width; none at a flagged point or where the half-width is NaN
    (one replication)."""
    if all(f"{y}_lo" in p and f"{y}_hi" in p for p in pts):
        def side(p: dict[str, float], t: bool, end: str) -> float:
            return 0.0 if t else _err(abs(p[f"{y}_{end}"] - p[y])) * scale
        return [[side(p, t, "lo") for p, t in zip(pts, flags)], [side(p, t, "hi") for p, t in zip(pts, flags)]]
    return [0.0 if t else _err(p.get(f"{y}{ci}", math.nan)) * scale for p, t in zip(pts, flags)]


SHORT_NOTE = "hollow: runs too short for this percentile's tail (thin_tail or biased); no CI bar"


def _flagged(p: dict[str, float], y: str) -> bool:
    """Whether point p's percentile y is not to be trusted: its ``y_thin_tail`` (or, in a
    sweep summary, ``y_biased``) column is 1 (a blank cell, NaN, is not a flag)."""
    return p.get(f"{y}_thin_tail") == 1.0 or p.get(f"{y}_biased") == 1.0


def _ci_lines(ax: Any, data: dict[str, list[dict[str, float]]], x: str, y: str, *, x_scale: float = 1.0,
              y_scale: float = 1.0, ci: str = "_ci", connect: bool = True) -> bool:
    """One line per key of ``data`` (an architecture, or any label) of y against x, with
    its CI half-width column (y + ``ci``) as error bars; ``connect=False`` draws points only
    (a categorical x). A percentile point that is flagged (:func:`_flagged`) gets no bar and
    a hollow marker. Returns whether any point was flagged."""
    any_flag = False
    for i, (a, pts) in enumerate(data.items()):
        color, ls, mk = _line_style(a, i)
        flag = [_flagged(p, y) for p in pts]
        ax.errorbar([p[x] * x_scale for p in pts], [p[y] * y_scale for p in pts],
                    yerr=_yerr(pts, y, flag, scale=y_scale, ci=ci),
                    color=color, linestyle=ls if connect else "none", capsize=2, label=a or None, **mk)
        if any(flag):
            any_flag = True
            ax.plot([p[x] * x_scale for p, t in zip(pts, flag) if t], [p[y] * y_scale for p, t in zip(pts, flag) if t],
                    linestyle="none", marker="o", markersize=7, markeredgewidth=1.2, zorder=3, markerfacecolor="white", markeredgecolor=color)
    return any_flag


def _thin_note(ax: Any, note: str = SHORT_NOTE) -> None:
    ax.text(0.99, 0.01, note, transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="#555555")


@_reads_table
def hockey(csv_path: Path | str, png_path: Path | str) -> None:
    """Throughput and p99 latency against offered load, one line per architecture."""
    header, rows, prov = read_csv(csv_path)
    data = _by_arch(rows, "offered_per_s")
    fig, (ax1, ax2) = _subplots(1, 2, figsize=(11, 4.3))
    _ci_lines(ax1, data, "offered_per_s", "throughput_per_s", x_scale=1e-6, y_scale=1e-6)
    if _ci_lines(ax2, data, "offered_per_s", "p99_us", x_scale=1e-6):
        _thin_note(ax2)
    ax1.set_xlabel("offered load (million requests/s)")
    ax1.set_ylabel("throughput (million requests/s)")
    ax1.set_title("Throughput against offered load")
    ax2.set_xlabel("offered load (million requests/s)")
    ax2.set_ylabel("p99 latency (µs, log scale)")
    ax2.set_yscale("log")
    # 1-2-5 ticks, labelled: the p99s span less than a decade or two, where a decade's ticks
    # alone leave one label to read them by
    ax2.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5)))
    ax2.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax2.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax2.set_title("The hockey stick: p99 latency")
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
    ax1.legend(fontsize=8)
    fig.suptitle("xeon-2017, cloud-mix, closed loop of 4096 clients with exponential think time; 95% CI bars",
                 fontsize=9)
    _save(fig, png_path)


@_reads_table
def latency_cdf(csv_path: Path | str, png_path: Path | str) -> None:
    """Latency CDFs at one offered load, one line per architecture (tail on a log scale)."""
    header, rows, prov = read_csv(csv_path)
    data = _by_arch(rows, "quantile")
    fig, ax = _subplots(figsize=(7.5, 4.8))
    any_thin = False
    for a, pts in data.items():
        color, ls = ARCH_STYLE.get(a, (None, "-"))
        ax.plot([p["latency_us"] for p in pts], [1 - p["quantile"] for p in pts], color=color, linestyle=ls,
                marker=".", label=a)
        thin = [p for p in pts if p.get("thin_tail", 0.0)]
        if thin:  # quantiles with too few requests beyond them: drawn hollow
            any_thin = True
            ax.plot([p["latency_us"] for p in thin], [1 - p["quantile"] for p in thin], linestyle="none", marker="o",
                    markersize=7, markeredgewidth=1.2, zorder=3, markerfacecolor="white", markeredgecolor=color)
    if any_thin:
        ax.text(0.01, 0.01, "hollow: fewer than 10 requests beyond that quantile", transform=ax.transAxes,
                ha="left", va="bottom", fontsize=7, color="#555555")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("request latency (µs)")
    ax.set_ylabel("fraction of requests slower (1 - CDF)")
    ax.set_title("Latency distribution at half of bare metal's capacity (xeon-2017, cloud-mix)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, png_path)


@_reads_table
def exit_cost(csv_path: Path | str, png_path: Path | str, generations: Any = ()) -> None:
    """Usable fraction against the cost of a VM exit, with hardware generations marked."""
    header, rows, prov = read_csv(csv_path)
    data = _by_arch(rows, "exit_cycles")
    fig, ax = _subplots(figsize=(8, 4.8))
    _ci_lines(ax, data, "exit_cycles", "usable_fraction")
    for i, (label, cycles, _src) in enumerate(generations):
        ax.axvline(cycles, color="#999999", linewidth=0.8, linestyle=":")
        ax.text(cycles, 0.02, f" {label}", rotation=90, fontsize=7, va="bottom", color="#555555")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("VM exit round trip (cycles, log); indirect, userspace and interrupt exit costs scaled with it")
    ax.set_ylabel("usable fraction of host cycles")
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_title("What cheaper exits bought back\n(xeon-2017, cloud-mix, saturated; 95% CI bars)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    _save(fig, png_path)


@_reads_table
def noisy_neighbour(csv_path: Path | str, png_path: Path | str) -> None:
    """A victim's p99 latency against its neighbour's packet rate, one line per architecture."""
    header, rows, prov = read_csv(csv_path)
    data = _by_arch(rows, "neighbour_offered_packets_per_s")
    fig, ax = _subplots(figsize=(7.5, 4.8))
    if _ci_lines(ax, data, "neighbour_packets_per_s", "victim_p99_us", x_scale=1e-6):
        _thin_note(ax)
    ax.set_yscale("log")
    ax.set_xlabel("neighbour's achieved packet rate (million packets/s, 64 B echoes)")
    ax.set_ylabel("victim's p99 latency (µs, log scale)")
    ax.set_title("Noisy neighbour: a kv-cache victim (8 vCPUs) beside a packet-heavy VM (32 vCPUs)\n"
                 "xeon-2017; what they share is the architecture's (dom0, NIC, card); 95% CI bars", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, png_path)


@_reads_table
def interrupt_moderation(csv_path: Path | str, png_path: Path | str) -> None:
    """CPU per request and latency against the receive interrupt's throttle interval under
    exiting interrupts, with exitless interrupts and bare metal as reference lines."""
    header, rows, prov = read_csv(csv_path)
    sweep = sorted((r for r in rows if r["architecture"] == "sriov"), key=lambda r: float(r["throttle_us"]))
    refs = [r for r in rows if r["architecture"] != "sriov"]
    ref_style = {"sriov-posted": ("#66a182", "--"), "bare-metal": ("#000000", ":")}
    fig, (a1, a2) = _subplots(1, 2, figsize=(11, 4.4))
    x = [float(r["throttle_us"]) for r in sweep]
    xs = [v if v > 0 else 1.0 for v in x]  # the unthrottled point drawn at 1 us on the log axis
    for ax, keys, unit in ((a1, (("cycles_per_request", "all host cycles"),
                                  ("exit_cycles_per_request", "of which exits")), 1e-3),
                           (a2, (("mean_us", "mean"), ("p99_us", "p99")), 1.0)):
        for j, (k, label) in enumerate(keys):
            pts = [{c: float(v) for c, v in r.items() if c.startswith(k)} for r in sweep]
            thin = [_flagged(p, k) for p in pts]
            ax.errorbar(xs, [p[k] * unit for p in pts], yerr=_yerr(pts, k, thin, scale=unit),
                        color=ARCH_STYLE["sriov"][0], linestyle="-" if j == 0 else "--", marker="o", markersize=3,
                        capsize=2, label=f"sriov, throttled: {label}")
            if any(thin):
                ax.plot([v for v, t in zip(xs, thin) if t], [float(r[k]) * unit for r, t in zip(sweep, thin) if t],
                        linestyle="none", marker="o", markersize=7, markeredgewidth=1.2, zorder=3, markerfacecolor="white",
                        markeredgecolor=ARCH_STYLE["sriov"][0])
                _thin_note(ax)
        for r in refs:
            color, ls = ref_style.get(r["architecture"], (ARCH_STYLE["sriov"][0], (0, (1, 1))))
            v = float(r[keys[0][0]]) * unit
            ax.axhline(v, color=color, linestyle=ls, linewidth=1.2, label=f"{r['architecture']}: {keys[0][1]}")
        ax.set_xscale("log")
        ax.set_xlabel("receive interrupt throttle (µs between interrupts, log; 1 = none)")
        ax.grid(True, which="both", alpha=0.3)
    a1.set_ylim(bottom=0)
    a1.set_ylabel("host CPU per get (thousand cycles)")
    a1.set_title("CPU per request", fontsize=10)
    a2.set_yscale("log")
    a2.set_ylabel("latency (µs, log)")
    a2.set_title("latency", fontsize=10)
    a1.legend(fontsize=7, loc="center right")
    a2.legend(fontsize=7, loc="upper left")
    fig.suptitle("Interrupt moderation buys back exits with latency; exitless interrupts get both\n"
                 "(xeon-2017, one 2.3 GHz guest core, kv-cache at 80k gets/s offered; 95% CI bars)", fontsize=10)
    fig.tight_layout()
    _save(fig, png_path)


@_reads_table
def polling_vs_interrupts(csv_path: Path | str, png_path: Path | str) -> None:
    """Mean latency (with the closed forms) and the core's time against the packet rate, for
    an interrupt-driven XDP core that sleeps in C-states and a polling DPDK core."""
    header, rows, prov = read_csv(csv_path)
    paths = {"xdp_irq": ("XDP, interrupts (core sleeps in C-states)", "#d1495b"),
             "xdp_haltpoll": ("XDP, core polls 200 µs before it sleeps", "#edae49"),
             "dpdk_poll": ("DPDK, polling", "#30638e")}
    fig, (a1, a2) = _subplots(1, 2, figsize=(11, 6.0))
    for path, (label, color) in paths.items():
        pts = sorted((r for r in rows if r["path"] == path), key=lambda r: float(r["packets_per_s"]))
        if not pts:
            continue
        x = [float(r["packets_per_s"]) for r in pts]
        a1.errorbar(x, [float(r["mean_us"]) for r in pts], yerr=[_err(float(r["mean_us_ci"])) for r in pts],
                    color=color, marker="o", markersize=3, linestyle="none", capsize=2, label=f"{label}: simulated")
        a1.plot(x, [float(r["theory_mean_us"]) for r in pts], color=color, linewidth=1, alpha=0.8,
                label=f"{label}: theory")
        if path == "xdp_irq":
            work = [float(r["work_share"]) for r in pts]
            wake = [float(r["wake_share"]) for r in pts]
            a2.fill_between(x, 0, work, color=CATEGORY_COLORS["tenant"], alpha=0.8, label="XDP core: packet work")
            a2.fill_between(x, work, [w + k for w, k in zip(work, wake)], color=color, alpha=0.35,
                            label="XDP core: waking from C-states")
            a2.plot(x, [float(r["woken_fraction"]) for r in pts], color=color, linestyle=":", marker=".",
                    label="XDP: share of packets that wake the core")
        elif path == "xdp_haltpoll":
            busy = [float(r["work_share"]) + float(r["wake_share"]) + float(r["poll_share"]) for r in pts]
            a2.plot(x, busy, color=color, linewidth=2, linestyle="--",
                    label="halt-polling XDP core: work + waking + polling")
        else:
            busy = [float(r["work_share"]) + float(r["poll_share"]) for r in pts]
            a2.plot(x, busy, color=color, linewidth=2, label="DPDK core: work + polling (all of it)")
    a1.set_xscale("log")
    a1.set_yscale("log")
    a1.set_xlabel("packets per second (Poisson, log)")
    a1.set_ylabel("mean latency, wire + core (µs, log)")
    a1.set_title("latency", fontsize=10)
    a2.set_xscale("log")
    a2.set_ylim(0, 1.05)
    a2.set_xlabel("packets per second (Poisson, log)")
    a2.set_ylabel("share of the core's time")
    a2.set_title("what the core does", fontsize=10)
    for ax in (a1, a2):
        ax.grid(True, which="both", alpha=0.3)
        # below the axes: inside, wherever it went it hid a curve (the halt-polling line near
        # 1,000-7,000 packets/s, the one the README's story is about)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, frameon=False)
    fig.suptitle("Polling spends a whole core to skip the wake-up; an interrupt-driven core sleeps and pays it;\n"
                 "polling 200 µs before sleeping (KVM's halt-polling) buys polling's latency once packets come that often\n"
                 "(the XDP paper's testbed: 3.6 GHz E5-1650 v4, intel_idle's worst-case C-state exits; 95% CI bars)",
                 fontsize=10)
    fig.tight_layout()
    _save(fig, png_path)


@_reads_table
def dom0_size(csv_path: Path | str, png_path: Path | str, *, bundled: int = 8) -> None:
    """The usable fraction against the cores reserved for dom0, with the bound of
    operational analysis beside each curve and the architectures without a dom0 as
    reference lines; on the right, which of dom0 and the vCPUs is saturated."""
    header, rows, prov = read_csv(csv_path)
    num = ("dom0_cores", "usable_fraction", "usable_fraction_ci", "bound_usable_fraction", "dom0_utilization",
           "dom0_utilization_ci", "vcpu_utilization", "vcpu_utilization_ci", "balanced_cores")
    curves: dict[str, list[dict[str, float]]] = {}
    refs = {}
    for r in rows:
        if r["dom0_cores"] == "":
            refs[r["architecture"]] = float(r["usable_fraction"])
        else:
            curves.setdefault(r["architecture"], []).append({k: float(r[k] or "nan") for k in num})
    for pts in curves.values():
        pts.sort(key=lambda p: p["dom0_cores"])
    fig, (a1, a2) = _subplots(1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [1.5, 1]})
    for a, pts in curves.items():
        color, ls = ARCH_STYLE.get(a, (None, "-"))
        x = [p["dom0_cores"] for p in pts]
        a1.errorbar(x, [p["usable_fraction"] for p in pts], yerr=[_err(p["usable_fraction_ci"]) for p in pts],
                    color=color, linestyle=ls, marker="o", markersize=3, capsize=2, label=f"{a} (simulated)")
        a1.plot(x, [p["bound_usable_fraction"] for p in pts], color=color, linestyle="-", linewidth=3.5, alpha=0.25,
                label=f"{a}: bound from its demands at {bundled} cores")
    if refs:  # one line: the architectures without a dom0 differ by less than a line's width
        a1.axhline(max(refs.values()), color="#000000", linewidth=0.9, linestyle="--",
                   label="no dom0: " + ", ".join(f"{a} {v:.3f}" for a, v in refs.items()))
    a1.axvline(bundled, color="#999999", linewidth=0.8, linestyle=":")
    a1.text(bundled, 0.02, f" i3: {bundled} threads reserved", rotation=90, fontsize=7, va="bottom", ha="right",
            color="#555555")
    if "xen-pv" in curves and curves["xen-pv"][0]["balanced_cores"] == curves["xen-pv"][0]["balanced_cores"]:
        cstar = curves["xen-pv"][0]["balanced_cores"]
        a1.axvline(cstar, color=ARCH_STYLE["xen-pv"][0], linewidth=0.8, linestyle=":")
        a1.text(cstar, 0.02, f" xen-pv balanced: {cstar:.1f}", rotation=90, fontsize=7, va="bottom", ha="left",
                color=ARCH_STYLE["xen-pv"][0])
    a1.set_ylim(0, 1.05)
    a1.set_xlabel("host threads reserved for dom0 (the rest are sold as vCPUs)")
    a1.set_ylabel("usable fraction of host cycles")
    a1.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    a1.set_title("How big should dom0 be? (xeon-2017, 72 threads, cloud-mix, saturated; 95% CI bars)", fontsize=9)
    a1.grid(True, alpha=0.3)
    handles, labels = a1.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: (0 if "(simulated)" in labels[i] else 1 if "bound" in labels[i] else 2))
    a1.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=7, loc="upper center",
               bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    if "xen-pv" in curves:
        pts = curves["xen-pv"]
        x = [p["dom0_cores"] for p in pts]
        for key, label, color in (("dom0_utilization", "dom0 cores", "#00798c"),
                                  ("vcpu_utilization", "tenant vCPUs", "#4c9a5b")):
            a2.errorbar(x, [p[key] for p in pts], yerr=[_err(p[f"{key}_ci"]) for p in pts], color=color,
                        marker="o", markersize=3, capsize=2, label=label)
        if pts[0]["balanced_cores"] == pts[0]["balanced_cores"]:
            a2.axvline(pts[0]["balanced_cores"], color=ARCH_STYLE["xen-pv"][0], linewidth=0.8, linestyle=":")
        a2.set_ylim(0, 1.05)
        a2.set_xlabel("host threads reserved for dom0")
        a2.set_ylabel("busy share of their cycles")
        a2.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        a2.set_title("xen-pv: below the balanced split dom0 is saturated\n"
                     "and the vCPUs wait; above it the vCPUs are, and dom0 idles", fontsize=9)
        a2.grid(True, alpha=0.3)
        a2.legend(fontsize=8, loc="lower right")
    _save(fig, png_path)


BREAKDOWN_LABELS = {"wait_vcpu": "waiting for a vCPU", "wait_backend": "waiting for a back end (dom0, card, ...)",
                    "wait_preempted": "suspended by an interrupt (preempted)",
                    "wire_device": "wire and devices", "delay": "pure delay (no resource held: e.g. a card's pipeline)"}


@_reads_table
def latency_breakdown(csv_path: Path | str, png_path: Path | str) -> None:
    """Each architecture's mean request latency as stacked parts: service by category,
    waiting for a vCPU or a back end, wire and devices, delays (the CSV's columns)."""
    header, rows, prov = read_csv(csv_path)
    parts = [k for k in header if k.startswith(("wait_", "svc_")) and not k.endswith("_ci")] + ["wire_device", "delay"]
    rows = rows[::-1]  # the first architecture on top
    fig, ax = _subplots(figsize=(9, 0.5 * len(rows) + 1.8))
    y = list(range(len(rows)))
    left = [0.0] * len(rows)
    for i, k in enumerate(parts):
        vals = [float(r[k]) for r in rows]
        if not any(v > 0.01 for v in vals):  # nothing a bar could show (and no legend entry for it)
            continue
        if k.startswith("svc_"):
            color, hatch, label = _color(k[4:], i), None, f"service: {k[4:]}"
        else:
            color = {"wait_vcpu": "#f4a582", "wait_backend": "#b2182b", "wait_preempted": "#fddbc7",
                     "wire_device": "#bdbdbd", "delay": "#e0e0e0"}[k]
            hatch, label = ("//" if k.startswith("wait_") else None), BREAKDOWN_LABELS[k]
        ax.barh(y, vals, left=left, color=color, hatch=hatch, edgecolor="white", linewidth=0.5, label=label)
        left = [a + v for a, v in zip(left, vals)]
    for yi, r in zip(y, rows):
        ci = float(r["mean_us_ci"])  # NaN with one replication: no interval to show
        pm = f" (± {ci:.1f})" if math.isfinite(ci) else " (± n/a: one run)"
        ax.text(float(r["mean_us"]) + 0.5, yi, f"{float(r['mean_us']):.1f} µs{pm}", va="center", fontsize=8)
    ax.set_yticks(y, [r["architecture"] for r in rows])
    ax.set_xlim(0, max(float(r["mean_us"]) for r in rows) * 1.25)
    ax.set_xlabel("mean request latency (µs), split by where the request spends it")
    ax.set_title("Where a request's time goes (xeon-2017, cloud-mix at half of bare metal's capacity;\n"
                 "the parts are summed from the per-stage table; the label is the measured mean, 95% CI)", fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3, frameon=False)
    _save(fig, png_path)


@_reads_table
def class_latency(csv_path: Path | str, png_path: Path | str) -> None:
    """Each request class's mean latency under each architecture (left, log scale, 95% CI
    bars) and the same against bare metal's for that class (right): who pays the I/O tax."""
    header, rows, prov = read_csv(csv_path)
    archs = list(dict.fromkeys(r["architecture"] for r in rows))
    classes = list(dict.fromkeys(r["class"] for r in rows))
    at = {(r["architecture"], r["class"]): r for r in rows}
    gone = [(a, c) for a in archs for c in classes if (a, c) not in at]
    if gone:
        from ._core import ModelError
        raise ModelError(f"has no row for architecture {gone[0][0]}, class {gone[0][1]} (every architecture needs a "
                         "row for every class)", file=str(csv_path))
    fig, (a1, a2) = _subplots(1, 2, figsize=(12, 4.6))
    width = 0.8 / len(archs)
    xs = list(range(len(classes)))
    for j, a in enumerate(archs):
        color = ARCH_STYLE.get(a, ("#333333", "-"))[0]
        pos = [x - 0.4 + (j + 0.5) * width for x in xs]
        means = [float(at[a, c]["mean_us"]) for c in classes]
        errs = [_err(float(at[a, c]["mean_us_ci"])) for c in classes]
        a1.bar(pos, means, width, yerr=errs, color=color, label=a, capsize=1.5, error_kw={"linewidth": 0.6})
        a2.bar(pos, [float(at[a, c]["mean_vs_bare_metal"]) for c in classes], width, color=color, label=a)
    for ax in (a1, a2):
        ax.set_xticks(xs, classes)
        ax.grid(True, axis="y", alpha=0.3)
    a1.set_yscale("log")
    a1.set_ylabel("mean latency (µs, log)")
    a1.set_title("each class's mean latency (95% CI)", fontsize=10)
    a2.axhline(1.0, color="#000000", linewidth=0.8)
    a2.set_yscale("log")
    a2.set_yticks([1, 1.5, 2, 3, 5, 10, 20], ["1", "1.5", "2", "3", "5", "10", "20"])
    a2.set_ylabel("mean latency / bare metal's for the class (log)")
    a2.set_title("against bare metal", fontsize=10)
    a2.legend(fontsize=7, loc="upper right", ncol=2)
    fig.suptitle("Who pays the I/O tax: latency by request class (xeon-2017, cloud-mix at half of bare metal's "
                 "throughput)", fontsize=10)
    fig.tight_layout()
    _save(fig, png_path)


@_reads_table
def request_path(csv_path: Path | str, png_path: Path | str) -> None:
    """One key-value get on an idle host under each architecture, as a timeline: each
    stage's service coloured by the category it is charged to, the wire and devices grey,
    pure delays (an offload card's pipeline) hatched; the work the get forks (a transmit
    completion) on a thin lane below. The label: the get's time and its VM exits."""
    header, rows, prov = read_csv(csv_path)
    archs = list(dict.fromkeys(r["architecture"] for r in rows))
    fig, ax = _subplots(figsize=(10, 0.62 * len(archs) + 1.9))
    seen: dict[str, Any] = {}
    end_of: dict[str, float] = {}
    for yi, a in enumerate(archs):
        y = len(archs) - 1 - yi  # the first architecture on top
        rs = [r for r in rows if r["architecture"] == a]
        for r in rs:
            forked = r["request"] != "get"
            yy, h = (y - 0.34, 0.16) if forked else (y, 0.5)
            t, svc, delay = float(r["enter_us"]) + float(r["wait_us"]), float(r["service_us"]), float(r["delay_us"])
            cat = r["account"]
            label = f"service: {cat}" if cat else "wire and devices"
            color = _color(cat, len(seen)) if cat else "#bdbdbd"
            if svc > 0:
                bar = ax.barh(yy, svc, left=t, height=h, color=color, edgecolor="white", linewidth=0.4,
                              label=None if label in seen else label)
                seen.setdefault(label, bar)
            if delay > 0:
                bar = ax.barh(yy, delay, left=t + svc, height=h, color="white", edgecolor="#9e9e9e", hatch="///",
                              linewidth=0.4, label=None if "delay" in seen else "delay (no resource held)")
                seen.setdefault("delay", bar)
        get = [r for r in rs if r["request"] == "get"]
        end = max(float(r["enter_us"]) + float(r["wait_us"]) + float(r["service_us"]) + float(r["delay_us"])
                  for r in get)
        exits = [sum(1 for r in rs if r["account"] == "exit" and "indirect" not in r["stage"]
                     and (r["request"] == "get") == on_path) for on_path in (True, False)]
        end_of[a] = end
        ax.text(end + 0.4, y, f"{end:.1f} µs, {exits[0]} exit{'' if exits[0] == 1 else 's'}"
                + (f" (+{exits[1]} in the work it forks)" if exits[1] else ""), va="center", fontsize=8)
    ax.set_yticks(range(len(archs)), archs[::-1])
    ax.set_xlim(0, max(end_of.values()) * 1.3)
    ax.set_xlabel("time since the get reached the host's NIC (µs); one client, so nothing waits")
    ax.set_title("One key-value get, stage by stage (xeon-2017, kv-cache, idle host): what each architecture puts on "
                 "its path\n(exits counted without their indirect-cost stages; `vemu run ... --trace 1` prints the "
                 "same)", fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=4, frameon=False)
    _save(fig, png_path)


def _unit(measure: str) -> str:
    """An axis label for a sweep summary's measure column."""
    if measure.endswith("_us"):
        return f"{measure} (µs)"
    if measure.endswith("throughput_per_s"):
        return f"{measure} (requests/s)"
    if measure == "usable_fraction" or measure.startswith("host_cycles."):
        return f"{measure} (share of host cycles)"
    return measure


def sweep_figure(lines: dict[str, list[tuple[Any, dict[str, float]]]], x: str, ys: list[str], png_path: Path | str,
                 *, numeric: bool, logx: bool, title: str, by: str | None = None, connect: bool = True) -> None:
    """A sweep summary drawn: for each measure in ``ys`` a panel of one line per group
    (``lines``: label -> [(x value, summary row as floats)], in x order), with 95% CI bars
    (``MEASURE_ci95``); a percentile whose runs were too short for its tail is hollow
    (:func:`_ci_lines`). A categorical x (names) is spread evenly, in the order the sweep
    ran it. ``connect`` False: points only (a sampled design's, whose other keys vary too)."""
    cats: list[Any] = []
    if not numeric:
        for pts in lines.values():
            cats += [v for v, _ in pts if v not in cats]
    data = {label: [dict(p, **{x: float(v) if numeric else float(cats.index(v))}) for v, p in pts]
            for label, pts in lines.items()}
    fig, axes = _subplots(len(ys), 1, figsize=(7.5, 3.2 * len(ys) + 0.4), sharex=True, squeeze=False)
    for ax, y in zip(axes[:, 0], ys):
        if _ci_lines(ax, data, x, y, ci="_ci95", connect=numeric and connect):
            _thin_note(ax)
        ax.set_ylabel(_unit(y))
        ax.grid(True, alpha=0.3)
        if len(lines) > 1:  # titled with the key the lines are values of ("1000" alone says little)
            ax.legend(fontsize=8, title=by, title_fontsize=8)
    bottom = axes[-1, 0]
    bottom.set_xlabel(x)
    if numeric and logx:
        bottom.set_xscale("log")
        # 1-2-5 ticks labelled plainly (as the hockey figure's): with the default minor
        # labels, an axis spanning under two decades read "3x10^4x10^3" where labels met
        bottom.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5)))
        bottom.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        bottom.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    if not numeric:
        bottom.set_xticks(range(len(cats)), [str(c) for c in cats], rotation=30 if len(cats) > 4 else 0, ha="right"
                          if len(cats) > 4 else "center")
        bottom.set_xlim(-0.5, len(cats) - 0.5)
    fig.suptitle(title, fontsize=9)
    _save(fig, png_path)
