"""Plot readings: one PNG per device, every sensor key over time, one panel per key.

    python -m tools.plot FILE.csv [--out DIR]        # make plot CSV=FILE.csv

Reads a CSV written by `make listen CSV=FILE.csv` (tools/csvlog.py); writes DIR/<device>.png
(DIR defaults to the CSV's folder) and prints each file it wrote. `make listen CSV=... PLOT=1`
plots what it recorded when it ends.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

from tools.csvlog import Reading, read_csv


def by_device(readings: Iterable[Reading]) -> dict[str, list[Reading]]:
    out: dict[str, list[Reading]] = {}
    for r in readings:
        out.setdefault(r.device, []).append(r)
    return out


def series(readings: list[Reading]) -> dict[str, tuple[list, list[float]]]:
    """Per key: (times, values), in file order; a reading without the key adds no point."""
    out: dict[str, tuple[list, list[float]]] = {}
    for r in readings:
        for key, value in r.values.items():
            times, values = out.setdefault(key, ([], []))
            times.append(r.received)
            values.append(value)
    return dict(sorted(out.items()))


def plot_device(device: str, readings: list[Reading], path: Path) -> bool:
    """Writes the device's PNG; False (and no file) when it has no numeric values."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    keys = series(readings)
    if not keys:
        return False
    fig, axes = plt.subplots(
        len(keys), 1, sharex=True, figsize=(9, 1.2 + 1.8 * len(keys)), squeeze=False
    )
    for ax, (key, (times, values)) in zip(axes[:, 0], keys.items(), strict=True):
        ax.plot(times, values, marker="." if len(values) < 60 else "", linewidth=1)
        ax.set_ylabel(key)
        ax.grid(True, alpha=0.3)
    axes[-1, 0].xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    axes[-1, 0].set_xlabel(f"time ({readings[0].received.tzname() or 'local'})")
    fig.suptitle(f"{device}: {len(readings)} readings")
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def plot_all(readings: Iterable[Reading], out: Path) -> list[Path]:
    """One PNG per device in `out`; the files written."""
    written = []
    for device, own in sorted(by_device(readings).items()):
        path = out / f"{device}.png"
        if plot_device(device, own, path):
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.plot", description=__doc__)
    parser.add_argument("csv", type=Path, help="a CSV written by make listen CSV=...")
    parser.add_argument("--out", type=Path, help="folder for the PNGs (default: the CSV's)")
    args = parser.parse_args(argv)
    if not args.csv.is_file():
        print(f"plot: {args.csv} does not exist", file=sys.stderr)
        return 1
    written = plot_all(read_csv(args.csv), args.out or args.csv.parent)
    if not written:
        print(f"plot: {args.csv} has no readings with numbers in them", file=sys.stderr)
        return 1
    for path in written:
        print(f"plot: wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
