"""Figures, drawn from result CSVs (never from live simulations).

matplotlib is imported here and nowhere else. Every figure is saved as PNG and SVG, with
labelled axes, units and a legend, readable in print.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .provenance import atomic_write_bytes, read_csv  # noqa: E402

# one colour per category, stable across figures; tenant work is the calm one
CATEGORY_COLORS = {
    "tenant": "#4c9a5b",
    "exit": "#d1495b",
    "hypervisor": "#edae49",
    "emulation": "#8e3b8a",
    "backend": "#00798c",
    "copy": "#66a182",
    "poll": "#f28f3b",
    "idle": "#d9d9d9",
    "reserved_idle": "#9e9e9e",
}
EXTRA_COLORS = ["#30638e", "#a05195", "#665191", "#ffa600", "#2f4b7c"]
ARCH_STYLE = {
    "bare-metal": ("#000000", "-"), "nitro": ("#4c9a5b", "-"), "sriov-posted": ("#66a182", "--"),
    "sriov": ("#edae49", "--"), "xen-aws-2017": ("#30638e", ":"), "xen-aws-2013": ("#00798c", ":"),
    "kvm-virtio": ("#8e3b8a", "-."), "xen-pv": ("#d1495b", "-"), "emulated": ("#7f7f7f", "-."),
}


def _color(cat: str, i: int) -> str:
    return CATEGORY_COLORS.get(cat, EXTRA_COLORS[i % len(EXTRA_COLORS)])


def _save(fig: "plt.Figure", png: Path | str) -> None:
    import io

    png = Path(png)
    for path, fmt in ((png, "png"), (png.with_suffix(".svg"), "svg")):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=150, bbox_inches="tight", metadata={"Date": None} if fmt == "svg" else None)
        atomic_write_bytes(path, buf.getvalue())
    plt.close(fig)


def headline(csv_path: Path | str, png_path: Path | str) -> None:
    """Usable fraction per architecture, as stacked bars of host-cycle categories."""
    header, rows, prov = read_csv(csv_path)
    cats = header[3:]
    rows = sorted(rows, key=lambda r: float(r["usable_fraction"]))
    fig, ax = plt.subplots(figsize=(8.5, 0.45 * len(rows) + 1.8))
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


def usable_vs_io(csv_path: Path | str, png_path: Path | str) -> None:
    """Usable fraction against I/O intensity, one line per architecture."""
    header, rows, prov = read_csv(csv_path)
    archs: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        archs.setdefault(r["architecture"], []).append((float(r["packets_per_mcycle"]), float(r["usable_fraction"])))
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for a, pts in archs.items():
        pts.sort()
        color, ls = ARCH_STYLE.get(a, (None, "-"))
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3, color=color, linestyle=ls, label=a)
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("I/O intensity: packets per million cycles of application work (packet-echo)")
    ax.set_ylabel("usable fraction of host cycles")
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_title("Compute-bound (left) to packet-bound (right), xeon-2017")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, ncol=2, loc="lower left")
    _save(fig, png_path)
