"""Results: the JSON of each run, and ``latest.md`` plus plots drawn from them.

``python -m bench.report [--results DIR]`` (run by ``python -m bench`` at
the end) reads the newest result of every scenario in ``DIR`` (a quick or
full one if there is any, else a custom one), and writes ``latest.md``: the
issue's targets with MET or MISSED and the measured numbers, then a table
per scenario; and, for the small-items scenario, ``small-throughput.png``
(items/s against N) and ``small-rss.png`` (peak RSS against N), drawn with
matplotlib (Agg), log x-axis, every contender.

Rates: items/s is item occurrences exported per second of wall time (for
``cat``, files read); MB/s is the dataset's payload (blob bytes, or row and
document text) in 10^6 bytes per second, the same numerator for every
contender, so the two rates give the same ratios. Ratio columns divide a
contender's median items/s by the named contender's at the same N.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
from dataclasses import dataclass
from datetime import date
from importlib import metadata
from pathlib import Path

__all__ = ["RESULTS", "machine_facts", "render", "write_result"]

#: ``engine.sources.PAGE_PROCESS_FROM``, not imported: the harness process stays small (its RSS is
#: every child's floor). ``tests/test_bench.py`` checks that the two agree.
PAGE_PROCESS_FROM = 50_000

RESULTS = Path(__file__).parent / "results"
OURS = "dsexport"
_PACKAGES = ("dsexport", "zipstream-ng", "anyio", "trio", "uvloop", "msgspec", "matplotlib")


def machine_facts() -> dict:
    """What the numbers were measured on."""
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    mem_kib = next((int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal:")), 0)
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "")
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "nproc": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": model,
        "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
        "zip": _first_line(["zip", "-v"], line=1),
        "git": _first_line(["git", "-C", str(Path(__file__).parent), "describe", "--always", "--dirty"]),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _first_line(argv: list[str], line: int = 0) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return None
    return out[line].strip() if len(out) > line else None


def write_result(record: dict, results: Path = RESULTS) -> Path:
    """Save one scenario's run as ``<date>-<scenario>[-custom].json``."""
    results.mkdir(parents=True, exist_ok=True)
    suffix = "-custom" if record.get("custom") else ""
    path = results / f"{date.today().isoformat()}-{record['scenario']}{suffix}.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def latest(results: Path) -> dict[str, dict]:
    """The newest result per scenario: standard (quick/full) ones before custom ones."""
    found: dict[str, tuple[tuple, dict]] = {}
    for path in results.glob("*.json"):
        record = json.loads(path.read_text())
        rank = (not record.get("custom"), record.get("started_at", ""))
        name = record["scenario"]
        if name not in found or rank > found[name][0]:
            found[name] = (rank, record)
    return {name: found[name][1] for name in sorted(found, key=_scenario_order)}


def _scenario_order(name: str) -> tuple[int, str]:
    from bench.scenarios import SCENARIOS

    names = list(SCENARIOS)
    return (names.index(name) if name in names else len(names), name)


# -- targets -------------------------------------------------------------------------


@dataclass
class Target:
    text: str
    measured: str
    met: bool | None  # None: not measured


def _contender(record: dict | None, n: int | None, contender: str) -> dict:
    """One contender's entry (command, runs, summary) at size ``n`` (None: the largest); {} if absent."""
    if record is None:
        return {}
    points = record["points"]
    point = points[-1] if n is None else next((p for p in points if p["n"] == n), None)
    return (point or {}).get("contenders", {}).get(contender) or {}


def _summary(record: dict | None, n: int | None, contender: str) -> dict | None:
    return _contender(record, n, contender).get("summary")


def _ratio(record: dict | None, n: int | None, ours: str, other: str, rate: str = "items_per_s") -> tuple[float, str] | None:
    """``ours``'s median rate over ``other``'s at size ``n`` (None: the largest), and the numbers as text."""
    a, b = _summary(record, n, ours), _summary(record, n, other)
    if not a or not b:
        return None
    unit = "items/s" if rate == "items_per_s" else "MB/s"
    return a[rate] / b[rate], f"{a[rate]:,.0f} vs {b[rate]:,.0f} {unit} = {a[rate] / b[rate]:.2f}x"


def _ratio_target(text: str, found: tuple[float, str] | None, at_least: float) -> Target:
    if found is None:
        return Target(text, "not measured", None)
    return Target(text, found[1], found[0] >= at_least)


def _size_text(record: dict | None, fallback: str) -> str:
    if record is None:
        return fallback
    return f"{record['points'][-1]['n']:,}"


def targets(results: dict[str, dict]) -> list[Target]:
    """The issues' targets, each with the measured medians.

    Issue 12 (exports at the speed of the disk) measures against the writers
    a user would otherwise run and against the floor of writing the same
    bytes (``cat-file``: ``cat > file && sync``); ``cat > /dev/null`` reads
    without writing, a floor no archive writer can meet, so no target is
    set against it. Issue 5's other targets stay.
    """
    small, yolo, blobs = results.get("small"), results.get("yolo"), results.get("blobs")
    out: list[Target] = []
    n = _size_text(yolo, "20,000")
    for other, at_least in (("zipstream-plain", 1.5), ("zip-cli", 1.5), ("cat-file", 0.8)):
        out.append(_ratio_target(f"YOLO, {n} images of ~100 KiB: ours >= {at_least}x {other}",
                                 _ratio(yolo, None, OURS, other), at_least))
    out.append(_ratio_target(f"big blobs, {_size_text(blobs, '10')} x 100 MiB: ours >= 0.9x cat-file MB/s",
                             _ratio(blobs, None, OURS, "cat-file", "mb_per_s"), 0.9))
    ours = _summary(small, 1_000_000, OURS)
    text = "small, 1 M items of 1 KiB: ours >= 150 k items/s"
    out.append(Target(text, f"{ours['items_per_s']:,.0f} items/s" if ours else "not measured",
                      None if not ours else ours["items_per_s"] >= 150_000))
    out.append(_ratio_target("small, 1 M items: ours >= 3x zip-cli items/s",
                             _ratio(small, 1_000_000, OURS, "zip-cli"), 3.0))
    out.append(_ratio_target("small, 1 M items: ours >= 2.5x zipstream-plain items/s (issue 5)",
                             _ratio(small, 1_000_000, OURS, "zipstream-plain"), 2.5))
    # Flat from the first size an export reads its pages in a page reader process (two processes'
    # peaks, summed, from there on): below it one process runs, and the step is no growth in N.
    paged = [p for p in small["points"] if p["n"] >= PAGE_PROCESS_FROM] if small else []
    if len(paged) > 1:
        first, last = paged[0], paged[-1]
        low, high = _summary(small, first["n"], OURS), _summary(small, last["n"], OURS)
        if low and high:
            ratio = high["peak_rss_mib_median"] / low["peak_rss_mib_median"]
            out.append(Target(f"peak RSS of ours flat in N: at {last['n']:,} within 1.2x of {first['n']:,}",
                              f"{high['peak_rss_mib_median']:.1f} vs {low['peak_rss_mib_median']:.1f} MiB"
                              f" = {ratio:.2f}x", ratio <= 1.2))
            out.append(Target(f"peak RSS of ours at {last['n']:,} under 150 MB",
                              f"{high['peak_rss_mib_median'] * 2**20 / 1e6:.1f} MB",
                              high["peak_rss_mib_median"] * 2**20 < 150e6))
    if len(paged) < 2:
        out.append(Target("peak RSS of ours flat in N", "not measured", None))
    out.append(_ratio_target(f"over HTTP, YOLO of {n} images: MB/s >= 0.8x ours to a file",
                             _ratio(yolo, None, "http-download", OURS, "mb_per_s"), 0.8))
    out.extend(_http_targets(results.get("http"), results.get("remote")))
    return out


def _child_median(record: dict | None, n: int | None, contender: str, field: str) -> float | None:
    """The median of a child-reported figure over the measured runs of one contender."""
    runs = _contender(record, n, contender).get("runs", [])
    values = sorted(r["child"][field] for r in runs if not r["warmup"] and r["exit_code"] == 0 and field in r["child"])
    return statistics.median(values) if values else None


def _http_targets(http: dict | None, remote: dict | None) -> list[Target]:
    out = []
    ttfb = _child_median(http, 1_000_000, "http-download", "ttfb_ms")
    text = "over HTTP: first byte in under 300 ms for a 1 M item version"
    out.append(Target(text, f"{ttfb:.0f} ms" if ttfb is not None else "not measured",
                      None if ttfb is None else ttfb < 300))
    w64, w1 = (_summary(remote, None, c) for c in ("remote-w64", "remote-w1"))
    text = "client-side export at 20 ms per request: window 64 >= 40x the items/s of window 1"
    if w64 and w1:
        n = remote["points"][-1]["n"]
        ratio = w64["items_per_s"] / w1["items_per_s"]
        out.append(Target(f"{text} ({n:,} items)", f"{w64['items_per_s']:,.0f} vs {w1['items_per_s']:,.1f} items/s"
                          f" = {ratio:.1f}x", ratio >= 40))
    else:
        out.append(Target(text, "not measured", None))
    return out


# -- Markdown --------------------------------------------------------------------------


def render(results: dict[str, dict]) -> str:
    """``latest.md``: machine, targets, then a table per scenario."""
    lines = ["# Benchmark results", ""]
    intro = (
        "Written by `python -m bench` (`make bench`: quick; `make bench-full`: the scale run); "
        "`python -m bench.report` redraws it from the JSON files beside it."
    )
    lines += [intro, ""]
    any_record = next(iter(results.values()), None)
    if any_record is None:
        return "\n".join(lines + ["No results yet: run `make bench`.", ""])
    m = any_record["machine"]
    floors = [p.get("rss_floor_kib", r["rss_floor_kib"]) for r in results.values() for p in r["points"]]
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
    lines += [(f"Machine: {m['nproc']} cores ({m['cpu_model'] or 'unknown CPU'}), {m['memory_gib']} GiB, "
              f"Linux {m['kernel']}, Python {m['python']}; {packages}; load average at start "
              f"{', '.join(map(str, m['load_average']))}. Each contender is its own process; times are the "
              f"parent's wall clock around it (interpreter start-up included), peak RSS the kernel's `ru_maxrss` "
              f"of the child from `os.wait4`, plus, for ours on a large store, the peak its page reader process "
              f"reports (the two run side by side). A forked child starts from the harness's own RSS, so every "
              f"figure is at least the floor (`true` measured the same way before each point: "
              f"{min(floors) / 1024:.1f}-{max(floors) / 1024:.1f} MiB); a figure at the floor is shown as "
              f"\"<= floor\" and means \"at most this\"."), ""]
    lines += ["## Targets (issues 5 and 12)", "", "| target | measured (medians) | verdict |", "| --- | --- | --- |"]
    for t in targets(results):
        verdict = "not measured" if t.met is None else "**MET**" if t.met else "**MISSED**"
        lines.append(f"| {t.text} | {t.measured} | {verdict} |")
    lines.append("")
    for record in results.values():
        lines += _scenario_section(record)
    return "\n".join(lines)


def _scenario_section(record: dict) -> list[str]:
    kind = record["mode"] + (", custom sizes/contenders" if record.get("custom") else "")
    lines = [f"## {record['scenario']}: {record['title']}", "",
             f"{kind} run of {record['started_at']}, {record['seconds']:.0f} s."]
    if record.get("note"):
        lines[-1] += f" {record['mode'].capitalize()} run: {record['note']}."
    if record.get("notes"):
        lines[-1] += f" Note: {record['notes']}."
    ratios = record["ratios"]
    lines += ["", "| contender | N | runs | median s | min-max s | items/s | MB/s | peak RSS MiB |"
              + "".join(f" x {r} |" for r in ratios),
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |" + "".join(" ---: |" for _ in ratios)]
    for point in record["points"]:
        summaries = {c: v["summary"] for c, v in point["contenders"].items()}
        for name, entry in point["contenders"].items():
            s = entry["summary"]
            label = f"**{name}**" if name.startswith(OURS) else name
            if s is None:
                lines.append(f"| {label} | {point['n']:,} | 0 | failed | | | | |" + " |" * len(ratios))
                continue
            cells = [f"{s['items_per_s'] / summaries[r]['items_per_s']:.2f}" if summaries.get(r) else "-"
                     for r in ratios]
            floor = point.get("rss_floor_kib", record["rss_floor_kib"]) / 1024
            rss = s["peak_rss_mib_median"]
            rss_cell = f"<= {rss:.1f}" if rss <= floor + 1 else f"{rss:.1f}"
            lines.append(
                f"| {label} | {point['n']:,} | {s['runs']} | {s['seconds_median']:.2f} | "
                f"{s['seconds_min']:.2f}-{s['seconds_max']:.2f} | {s['items_per_s']:,.0f} | {s['mb_per_s']:,.1f} | "
                f"{rss_cell} |" + "".join(f" {c} |" for c in cells)
            )
        for name, why in point.get("skipped", {}).items():
            lines.append(f"| {name} | {point['n']:,} | skipped: {why} | | | | | |" + " |" * len(ratios))
    lines.append("")
    lines += _http_section(record)
    if record["scenario"] in ("scaleout", "s3-ray"):
        from bench.scaleout import report_lines

        for point in record["points"]:
            lines += report_lines(point)
    if record["scenario"] == "small":
        lines += ["![items/s against N](small-throughput.png)", "", "![peak RSS against N](small-rss.png)", ""]
    return lines


def _http_section(record: dict) -> list[str]:
    """First-byte times and the server's peak RSS, for contenders that report them."""
    rows = []
    for point in record["points"]:
        for name in point["contenders"]:
            ttfb = _child_median(record, point["n"], name, "ttfb_ms")
            ttfb_max = _child_median(record, point["n"], name, "ttfb_ms_max")
            server = _child_median(record, point["n"], name, "server_peak_rss_kib")
            if ttfb is None and server is None:
                continue
            rows.append(f"| {name} | {point['n']:,} | {'-' if ttfb is None else f'{ttfb:.0f}'} | "
                        f"{'-' if ttfb_max is None else f'{ttfb_max:.0f}'} | "
                        f"{'-' if server is None else f'{server / 1024:.1f}'} |")
    if not rows:
        return []
    return ["| contender | N | first byte ms | slowest first byte ms | server peak RSS MiB |",
            "| --- | ---: | ---: | ---: | ---: |", *rows, "",
            "Medians over the runs. First byte: from sending the request to the first body byte, measured by the "
            "client; for x16, the median and the slowest of the 16 concurrent downloads. Server peak RSS: "
            "`ru_maxrss` of the server process (one per run), from `os.wait4` after SIGTERM.", ""]


# -- plots -----------------------------------------------------------------------------


def plot_small(record: dict, results: Path) -> list[Path]:
    """items/s and peak RSS against N for every contender of the small-items scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    series: dict[str, list[tuple[int, dict]]] = {}
    for point in record["points"]:
        for name, entry in point["contenders"].items():
            if entry["summary"]:
                series.setdefault(name, []).append((point["n"], entry["summary"]))
    paths = []
    for stem, ylabel, value, low, high in (
        ("small-throughput", "items/s (median; bars: min-max)", "items_per_s", "items_per_s_min", "items_per_s_max"),
        ("small-rss", "peak RSS, MiB (median; bars: min-max)", "peak_rss_mib_median", "peak_rss_mib_min",
         "peak_rss_mib_max"),
    ):
        fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
        for name, pts in series.items():
            xs = [n for n, _ in pts]
            ys = [s[value] for _, s in pts]
            err = [[y - s[low] for y, (_, s) in zip(ys, pts)], [s[high] - y for y, (_, s) in zip(ys, pts)]]
            ours = name.startswith(OURS)
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=name,
                        linewidth=2.8 if ours else 1.4, zorder=3 if ours else 2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:,.0f}")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if str(int(v))[0] in "25" else ""))
        if stem == "small-rss":
            left = min(min(n for n, _ in p) for p in series.values())
            ax.axhline(150e6 / 2**20, color="grey", linestyle="--", linewidth=1)
            ax.text(left, 150e6 / 2**20 * 1.05, "150 MB target", color="grey", fontsize=8)
            floor = max(p.get("rss_floor_kib", record["rss_floor_kib"]) for p in record["points"]) / 1024
            ax.axhline(floor, color="grey", linestyle=":", linewidth=1)
            ax.text(left, floor * 1.05, "floor: a spawned `true`", color="grey", fontsize=8)
        ax.set_xlabel("items (N, log scale)")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{record['title']} ({record['mode']}, {record['started_at'][:10]})", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = results / f"{stem}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description="Redraw latest.md and the plots.")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    results = latest(args.results)
    if "small" in results:
        plot_small(results["small"], args.results)
    (args.results / "latest.md").write_text(render(results))
    print(f"wrote {args.results / 'latest.md'}")


if __name__ == "__main__":
    main()
