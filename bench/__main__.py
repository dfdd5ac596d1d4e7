"""``python -m bench``: run the benchmark scenarios and write the report.

    python -m bench [--quick | --full] [--scenario NAME ...] [--repeat N]
                    [--sizes N ...] [--contender NAME ...] [--no-warmup]
                    [--cache DIR] [--results DIR] [--list]

For each scenario and each of its points (dataset sizes) it makes sure the
dataset exists in the cache, then runs every contender as its own process:
one warm-up round, then ``repeat`` rounds. A round runs each contender once
in turn, so the machine's slow and fast spells fall on all of them alike.
Each scenario's runs go to ``<results>/<date>-<scenario>.json``; at the end
``python -m bench.report`` redraws ``latest.md`` and the plots from the
newest result of every scenario.

``--sizes`` or ``--contender`` make a *custom* run, saved as
``<date>-<scenario>-custom.json`` so it never replaces a quick or full
result; e.g. ``python -m bench --scenario small --sizes 2000 --repeat 1``
is a smoke test of the whole harness in a few seconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from bench.contenders import PYTHON_CONTENDERS, SHELL_CONTENDERS, command
from bench.datasets import CACHE, FILE_BLOB_KINDS, Dataset, ensure, key
from bench.http_contenders import HTTP_CONTENDERS, measure_http
from bench.http_contenders import command as http_command
from bench.measure import (
    Run,
    as_dict,
    empty_trash,
    measure_one,
    prewarm,
    rss_floor,
    summarise,
)
from bench.report import RESULTS, machine_facts, write_result
from bench.s3 import S3_CONTENDERS, seaweed_for
from bench.s3 import setup as s3_setup
from bench.scenarios import MODES, SCENARIOS, Point, Scenario

CONTENDERS = [*PYTHON_CONTENDERS, "datumaro-coco", *SHELL_CONTENDERS, *HTTP_CONTENDERS]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick", help="the make bench run (default)")
    mode.add_argument("--full", dest="mode", action="store_const", const="full", help="the scale run, up to 5 M items")
    parser.add_argument("--scenario", nargs="+", choices=list(SCENARIOS), metavar="NAME",
                        help=f"scenarios to run (default: all): {', '.join(SCENARIOS)}")
    parser.add_argument("--repeat", type=int, metavar="N", help="measured runs per contender (overrides the plan)")
    parser.add_argument("--sizes", type=int, nargs="+", metavar="N", help="dataset sizes (item counts) to use instead")
    parser.add_argument("--contender", nargs="+", choices=CONTENDERS, metavar="NAME",
                        help=f"only these contenders: {', '.join(CONTENDERS)}")
    parser.add_argument("--no-warmup", action="store_true", help="skip the warm-up round")
    parser.add_argument("--cache", type=Path, default=CACHE, help=f"dataset cache (default: {CACHE})")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"results folder (default: {RESULTS})")
    parser.add_argument("--list", action="store_true", help="print the scenarios and their plans, and exit")
    args = parser.parse_args(argv)
    args.mode = args.mode or "quick"
    for name in args.scenario or []:
        try:
            SCENARIOS[name].points(args.mode, args.sizes)
        except ValueError as exc:
            parser.error(str(exc))
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.sizes and any(n < 1 for n in args.sizes):
        parser.error("--sizes must be positive item counts")
    return args


def _portable(argv: list[str], cache: Path) -> list[str]:
    """The command as anyone can read it: no interpreter or cache path of this machine.

    The cache is matched as given and as resolved (it may be a symbolic link to a shared one);
    other paths in the checkout (Datumaro's interpreter) are given relative to it.
    """
    prefixes = sorted({os.path.abspath(cache), str(cache.resolve())}, key=len, reverse=True)
    checkout = str(Path(__file__).resolve().parent.parent) + os.sep
    out = []
    for arg in argv:
        if arg == sys.executable:
            arg = "python"
        elif prefix := next((p for p in prefixes if arg.startswith(p)), None):
            arg = "<cache>" + arg[len(prefix) :]
        elif arg.startswith(checkout):
            arg = arg[len(checkout) :]
        out.append(arg)
    return out


def log(message: str) -> None:
    print(message, flush=True)


def run_point(scenario: Scenario, point: Point, args: argparse.Namespace) -> dict:
    """Measure every contender of one point, in rounds; the point's record for the JSON."""
    contenders = [c for c in point.contenders if not args.contender or c in args.contender]
    skipped: dict[str, str] = {}
    if "zip-cli" in contenders and shutil.which("zip") is None:
        skipped["zip-cli"] = "Info-ZIP zip is not on the PATH (apt-get install zip)"
    contenders = [c for c in contenders if c not in skipped]
    tree = "zip-cli" in contenders or "datumaro-coco" in contenders or (
        bool({"cat", "cat-file"} & set(contenders)) and scenario.kind not in FILE_BLOB_KINDS
    )
    dataset = ensure(scenario.kind, point.params, tree=tree, cache=args.cache, log=log)
    if {"dsexport-s3", "s3-get"}.intersection(contenders):
        s3_setup(dataset, log=log)  # the dataset put into the bucket, once (bench/s3.py)
    floor = rss_floor()
    runs: dict[str, list[Run]] = {c: [] for c in contenders}
    plan = {c: point.runs_of(c, args.repeat) for c in contenders}
    warm = [c for c in contenders if point.warmup and not args.no_warmup and c not in point.cold]
    rounds = [("warm-up", True)] if warm else []
    rounds += [(f"run {r + 1}", False) for r in range(max(plan.values(), default=0))]
    out_root, trash = args.cache / "_out", args.cache / "_trash"
    log(f"  {scenario.name} n={point.n:,}: {', '.join(f'{c} x{plan[c]}' for c in contenders)}"
        + (f"; warm-up: {', '.join(warm)}" if warm else "; no warm-up"))
    prewarm([*Path(dataset.store).glob("store.sqlite3*"), *(Path(dataset.root) / f for f in dataset.blob_files)])
    if tree and scenario.kind in FILE_BLOB_KINDS:  # zip -r reads a copy of the blob files: warm it alike
        # in a child: listing 20 k files here would raise the RSS every forked contender starts from
        subprocess.run(["sh", "-c", "find . -type f -print0 | xargs -0 cat > /dev/null"], cwd=dataset.tree, check=True)
    for label, is_warmup in rounds:
        for name in contenders:
            done = [x for x in runs[name] if not x.warmup]
            if (is_warmup and name not in warm) or any(x.exit_code for x in runs[name]) or (
                not is_warmup and len(done) >= plan[name]
            ):
                continue
            if name in HTTP_CONTENDERS:
                run = measure_http(name, dataset, out_root / name, trash, warmup=is_warmup)
            else:
                argv, cwd = command(name, dataset, out_root / name)
                run = measure_one(argv, cwd, out_root / name, trash, warmup=is_warmup)
            runs[name].append(run)
            failed = f"  FAILED (exit {run.exit_code}): {run.error[-500:]}" if run.exit_code else ""
            extra = _http_extra(run)
            log(f"    {label:8} {name:18} {run.seconds:8.2f} s {run.peak_rss_kib / 1024:8.1f} MiB{extra}{failed}")
    shutil.rmtree(out_root, ignore_errors=True)
    empty_trash(trash)
    return {
        "n": point.n,
        "params": point.params,
        "rss_floor_kib": floor,
        "dataset": _dataset_record(dataset),
        "contenders": {
            c: {
                "command": _portable(_command_of(c, dataset), args.cache),
                "runs": [as_dict(r) for r in runs[c]],
                "summary": as_dict(summarise(runs[c], dataset.items, dataset.payload_bytes)),
            }
            for c in contenders
        },
        "skipped": skipped,
    }


def _command_of(name: str, dataset: Dataset) -> list[str]:
    """The contender's command as recorded (an HTTP client's server URL and key left as placeholders)."""
    if name in HTTP_CONTENDERS:
        return http_command(name, "<server-url>", "<api-key>", dataset, Path("<out>"))
    return command(name, dataset, Path("<out>"))[0]


def _http_extra(run: Run) -> str:
    """Time to first byte and the server's peak RSS, where an HTTP contender reported them."""
    extra = ""
    if "ttfb_ms" in run.child:
        extra += f"  first byte {run.child['ttfb_ms']:.0f} ms"
    if "server_peak_rss_kib" in run.child:
        extra += f"  server {run.child['server_peak_rss_kib'] / 1024:.1f} MiB"
    return extra


def _dataset_record(dataset: Dataset) -> dict:
    return {
        "key": key(dataset.kind, dataset.params),
        "items": dataset.items,
        "payload_bytes": dataset.payload_bytes,
        "format": dataset.format,
        "generated_seconds": dataset.generated_seconds,
    }


def run_scenario(scenario: Scenario, args: argparse.Namespace, facts: dict, floor_kib: int) -> Path:
    custom = bool(args.sizes or args.contender)
    started = time.time()
    log(f"== {scenario.name}: {scenario.title} ({args.mode}{', custom' if custom else ''})")
    points_of = scenario.points(args.mode, args.sizes)
    if any(S3_CONTENDERS.intersection(p.contenders) for p in points_of):
        with seaweed_for(args.cache):  # one S3 server (SeaweedFS on loopback) for the scenario
            points = [run_point(scenario, p, args) for p in points_of]
    else:
        points = [run_point(scenario, p, args) for p in points_of]
    record = {
        "scenario": scenario.name,
        "title": scenario.title,
        "mode": args.mode,
        "custom": custom,
        "started_at": datetime.fromtimestamp(started).isoformat(timespec="seconds"),
        "seconds": round(time.time() - started, 1),
        "ratios": list(scenario.ratios),
        "note": "" if custom else scenario.quick_note if args.mode == "quick" else scenario.full_note,
        "notes": scenario.notes,
        "machine": facts,
        "rss_floor_kib": floor_kib,
        "points": points,
    }
    path = write_result(record, args.results)
    log(f"   wrote {path} ({record['seconds']:.0f} s)")
    return path


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.list:
        for s in SCENARIOS.values():
            log(f"{s.name}: {s.title}")
            for mode in MODES:
                for p in s.points(mode):
                    log(f"  {mode:5} n={p.n:>9,}  " + ", ".join(f"{c} x{p.runs_of(c, None)}" for c in p.contenders))
        return
    started = time.perf_counter()
    floor = rss_floor()
    facts = machine_facts()
    log(f"bench ({args.mode}): {facts['nproc']} cores, {facts['memory_gib']} GiB, python {facts['python']}; "
        f"peak RSS floor of a spawned process: {floor / 1024:.1f} MiB")
    for name in args.scenario or list(SCENARIOS):
        run_scenario(SCENARIOS[name], args, facts, floor)
    subprocess.run([sys.executable, "-m", "bench.report", "--results", str(args.results)], check=True)
    log(f"bench done in {time.perf_counter() - started:.0f} s; see {args.results / 'latest.md'}")


if __name__ == "__main__":
    main()
