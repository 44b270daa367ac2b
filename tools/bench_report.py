"""The benchmark's report: the targets, whether each is met, and the tables it prints.

One table per runtime (32-bit first: its figures are a board's), then the sensornode heap by
part. The targets are reported, never enforced; they are judged on every runtime, and the
issue that set them (a board's heap) is about the 32-bit one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

KB = 1024
NET_HEAP_MAX = 24 * KB  # the net resident heap's target
TARGETS = {
    "net_resident_heap_bytes": f"<= {NET_HEAP_MAX // KB} KB",
    "alloc_per_cycle_bytes": "<= bare",
    "cpu_us_per_cycle": "<= 1.5 x bare",
    "min_heapsize_bytes": "<= 64 KB",
    "lost_readings": "0",
    "fleet": "nothing lost",
}


def net_heap_met(net: int) -> bool:
    """The net resident heap's target, as the whole bench and `--heap` judge it."""
    return net <= NET_HEAP_MAX


def targets(sn: dict[str, Any], bare: dict[str, Any], fl: dict[str, Any]) -> dict[str, bool]:
    smallest = sn["min_heapsize_bytes"]
    return {
        "net_resident_heap_bytes": net_heap_met(sn["net_resident_heap_bytes"]),
        "alloc_per_cycle_bytes": sn["alloc_per_cycle_bytes"] <= bare["alloc_per_cycle_bytes"],
        "cpu_us_per_cycle": _cpu_met(sn["cpu_us_per_cycle"], bare["cpu_us_per_cycle"]),
        "min_heapsize_bytes": smallest is not None and smallest <= 64 * KB,
        "lost_readings": sn["lost_readings"] == 0,
        "fleet": fl["received"] == fl["detail"]["taken"] == fl["sent"],
    }


def _cpu_met(sn: float | None, bare: float | None) -> bool:
    # Judged on CPU time only: unmeasured (no schedstat) is not met.
    return sn is not None and bare is not None and sn <= 1.5 * bare


def fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, dict):
        return " / ".join(fmt(x) for x in v.values())
    return str(v)


def _ratio(a: Any, b: Any) -> str:
    if isinstance(a, int | float) and isinstance(b, int | float) and b:
        return f"{a / b:.2f}"
    return ""


def _render(head: tuple[str, ...], rows: list[tuple[str, ...]], markdown: bool = False) -> str:
    if markdown:  # for the README: the same rows as a Markdown table, indents as ellipses
        out = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
        for r in rows:
            name = "… " + r[0].strip() if r[0].startswith("  ") else r[0]
            out.append("| " + " | ".join((name, *r[1:])) + " |")
        return "\n".join(out)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = []
    for r in [head, *rows]:
        cells = [r[0].ljust(widths[0])] + [r[i].rjust(widths[i]) for i in range(1, len(head))]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def table(res: dict[str, Any], markdown: bool = False) -> str:
    """One runtime's figures: sensornode against the bare loop, with the targets."""
    sn, bare, fl = res["sensornode"], res["bare"], res["fleet"]
    met = sn["targets"]
    d, bd = sn["detail"], bare["detail"]
    rows: list[tuple[str, ...]] = []

    def row(name: str, key: str | None, a: Any, b: Any, ratio: bool = True) -> None:
        target = TARGETS.get(key or "", "")
        ok = fmt(met[key]) if key in met else ""
        rows.append((name, fmt(a), fmt(b), _ratio(a, b) if ratio else "", target, ok))

    key = "net_resident_heap_bytes"
    row("resident heap, .mpy, net of the board", key, sn[key], bare[key])
    first = d.get("net_resident_heap_bytes_first_boot")
    if first is not None:
        row("  on a first boot (new files: checked, then restarted)", None, first, None, False)
    row("  the virtual board's share", None, d["board_share_bytes"], bd["board_share_bytes"])
    row(
        "  from source, net",
        None,
        d["net_resident_heap_bytes_py"],
        bd["net_resident_heap_bytes_py"],
    )
    row(
        "  .mpy in a ROMFS image, net",
        None,
        d["net_resident_heap_bytes_romfs"],
        bd["net_resident_heap_bytes_romfs"],
    )
    o3 = "net_resident_heap_bytes_mpy_o3"
    if o3 in d:  # benches before it have no such row
        row("  .mpy compiled -O3 (tracebacks say line 1), net", None, d[o3], bd[o3])
    row("  qstr pools (.mpy)", None, d["qstr_pool_bytes_mpy"], bd["qstr_pool_bytes_mpy"])
    key = "alloc_per_cycle_bytes"
    row("alloc per cycle, bytes", key, sn[key], bare[key])
    row(
        "  of it the console line (console_readings)", None, d.get("console_line_alloc_bytes"), None
    )
    key = "cpu_us_per_cycle"
    row("CPU per cycle, us (the board's CPU time, each alone)", key, sn[key], bare[key])
    row(
        "  user-mode instructions per cycle (callgrind, each alone)",
        None,
        d.get("instructions_per_cycle"),
        bd.get("instructions_per_cycle"),
    )
    row(
        "  time per cycle, us (wall: the PUBACK's round trip too)",
        None,
        d["cycle_us_wall"],
        bd["cycle_us_wall"],
    )
    row(
        "  as shipped (Nagle), us (wall)", None, d["as_shipped_cycle_us"], bd["as_shipped_cycle_us"]
    )
    row(
        "wire bytes per reading", None, sn["wire_bytes_per_reading"], bare["wire_bytes_per_reading"]
    )
    row("first reading, ms", None, sn["first_reading_ms"], bare["first_reading_ms"])
    row(
        "  without boot.py's 1.5 s window",
        None,
        d["first_reading_ms_no_boot_window"],
        bare["first_reading_ms"],
    )
    row("recover after broker restart, s", None, sn["recover_s"], None, False)
    row("lost readings", "lost_readings", sn["lost_readings"], None, False)
    key = "min_heapsize_bytes"
    runs = d["min_heapsize_runs"]["sensornode_mpy"]
    row(f"smallest heap, .mpy, {d['cycles']:,} cycles", key, sn[key], bare[key])
    row(
        f"  spread (passed once; {runs.get('confirm_runs', 0)} in a row at the figure)",
        None,
        runs.get("passed_once_bytes"),
        d["min_heapsize_runs"]["bare_mpy"].get("passed_once_bytes"),
    )
    row("  from source", None, d["min_heapsize_bytes_py"], bd["min_heapsize_bytes_py"])
    booted = d["min_heapsize_runs"].get("sensornode_mpy_booted", {}).get("bytes")
    row("  booted before (its checks' result, HA record kept)", None, booted, None)
    for arch, n in sn["mpy_bytes"].items():
        row(f".mpy bytes, {arch}", None, n, bare["mpy_bytes"][arch])
    for name, got in res.get("extras", {}).items():
        shown = got["bytes"] if got["bytes"] is not None else "n/a: " + str(got.get("error"))
        rows.append((f"on top of the idle node: {name}", fmt(shown), "", "", "", ""))
    fleet = f"{fl['received']:,} of {fl['sent']:,}"
    name = f"fleet: {fl['boards']} boards x {fl['rate_hz']:g} Hz x {fl['seconds']:g} s"
    rows.append((name, fleet, "", "", TARGETS["fleet"], fmt(met["fleet"])))
    head = ("figure", "sensornode", "bare", "ratio", "target", "met?")
    return _render(head, rows, markdown)


def parts_table(res: dict[str, Any], markdown: bool = False) -> str:
    """sensornode's resident heap (.mpy) by part, largest first."""
    d = res["sensornode"]["detail"]
    parts = d["heap_parts"]
    rows: list[tuple[str, ...]] = [
        ("interpreter", fmt(d["board"]["interpreter"])),
        ("launcher (virtual board)", fmt(d["board"]["before_main"] - d["board"]["interpreter"])),
        ("board support (virtual board)", fmt(d["board"]["bsp"])),
        ("boot.py's leftovers", fmt(d["board"]["boot_py"])),
    ]
    rows = [(*r, "", "") for r in rows]
    names = parts.get("module_names", {})
    mods = sorted(parts["modules"].items(), key=lambda kv: -kv[1])
    for name, n in mods:
        step = names.get(name, {})
        rows.append((f"module {name}", fmt(n), fmt(step.get("names")), fmt(step.get("pool_bytes"))))
    for name, key in (
        ("reading the configuration (validated.json), what it leaves", "config_read"),
        ("boot, connect and readings: the node's objects", "objects"),
    ):
        step = parts.get(key + "_names", {})
        rows.append((name, fmt(parts[key]), fmt(step.get("names")), fmt(step.get("pool_bytes"))))
    pools = parts["qstr_pool_bytes"]
    board_pools = d["board"]["qstr_pool_bytes"]
    rows.append(("(qstr pools, part of the above)", fmt(pools), "", ""))
    rows.append(
        ("(  of which the firmware's)", fmt(pools - board_pools if pools else None), "", "")
    )
    # A pool's array doubles when it fills: that step lands on whichever module filled it.
    head = ("sensornode heap by part, .mpy", "bytes", "new names", "pool growth")
    return _render(head, rows, markdown)


def _by_runtime(results: dict[str, Any], tables: Callable[[dict[str, Any]], list[str]]) -> str:
    """Each runtime's section (32-bit first), headed by what the runtime is, or why it is
    missing."""
    out = []
    for key in ("32-bit", "64-bit"):
        res = results.get(key)
        if res is None:
            continue
        if "missing" in res:
            out.append(f"{key}: figures missing: {res['missing']}")
            continue
        out.append(f"{key}: {res['runtime']}")
        out.extend(tables(res))
        out.append("")
    return "\n".join(out).rstrip()


def report(results: dict[str, Any], markdown: bool = False) -> str:
    return _by_runtime(results, lambda res: [table(res, markdown), "", parts_table(res, markdown)])


def heap_report(results: dict[str, Any]) -> str:
    """`bench --heap`: per runtime, the net resident heap against its target and its parts."""

    def tables(res: dict[str, Any]) -> list[str]:
        net = res["sensornode"]["net_resident_heap_bytes"]
        target = TARGETS["net_resident_heap_bytes"]
        verdict = fmt(net_heap_met(net))
        return [
            f"net resident heap, .mpy: {fmt(net)} B (target {target}: {verdict})",
            parts_table(res),
        ]

    return _by_runtime(results, tables)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    from pathlib import Path

    parser = argparse.ArgumentParser(
        prog="python -m tools.bench_report", description="The tables of a bench.json again."
    )
    parser.add_argument("json", type=Path, nargs="?", default=Path("build/bench.json"))
    parser.add_argument("--markdown", action="store_true", help="as Markdown tables")
    args = parser.parse_args(argv)
    print(report(json.loads(args.json.read_text()), args.markdown))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
