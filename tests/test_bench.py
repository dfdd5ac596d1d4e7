"""The benchmark harness itself, on a tiny dataset (the real runs are `make bench`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_harness_measures_every_contender_on_the_same_work(tmp_path: Path):
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--scenario", "small", "--sizes", "500", "--repeat", "1",
         "--no-warmup", "--cache", str(tmp_path / "cache"), "--results", str(results)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (result_file,) = results.glob("*-small-custom.json")
    record = json.loads(result_file.read_text())
    (point,) = record["points"]
    contenders = point["contenders"]
    zips = {}
    for name in ("dsexport", "zipstream-plain", "zipfile-memory"):
        (run,) = [r for r in contenders[name]["runs"] if not r["warmup"]]
        assert run["exit_code"] == 0 and not run["error"], (name, run)
        assert run["peak_rss_kib"] > 0 and run["seconds"] > 0
        assert run["child"]["entries"] == 500
        zips[name] = run["child"]["archive_bytes"]
        assert contenders[name]["summary"]["items_per_s"] > 0
    # Same layout, all stored: the baselines do exactly our work. zipfile
    # puts sizes in the local headers instead of 16-byte data descriptors.
    assert zips["zipstream-plain"] == zips["dsexport"]
    assert zips["zipfile-memory"] == zips["dsexport"] - 16 * 500
    table = (results / "latest.md").read_text()
    assert "| **dsexport** | 500 |" in table
    for plot in ("small-throughput.png", "small-rss.png"):
        assert (results / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_http_scenarios_measure_the_server_from_outside(tmp_path: Path):
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--scenario", "http", "remote", "--sizes", "200", "--repeat", "1",
         "--cache", str(tmp_path / "cache"), "--results", str(results)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (http,) = json.loads(next(results.glob("*-http-custom.json")).read_text())["points"]
    (remote,) = json.loads(next(results.glob("*-remote-custom.json")).read_text())["points"]
    one = http["contenders"]["http-download"]["runs"][0]["child"]
    many = http["contenders"]["http-download-x16"]["runs"][0]["child"]
    assert one["ttfb_ms"] > 0 and one["server_peak_rss_kib"] > 10_000
    assert many["downloads"] == 16 and many["archive_bytes"] == 16 * one["archive_bytes"]
    w64, w1 = (remote["contenders"][c]["runs"][0]["child"] for c in ("remote-w64", "remote-w1"))
    assert w64["items"] == w1["items"] == 200 and w64["archive_bytes"] == w1["archive_bytes"]
    assert w1["inner_seconds"] > 200 * 0.020  # the proxy's 20 ms per request was paid one item at a time
    table = (results / "latest.md").read_text()
    assert "| http-download | 200 |" in table and "server peak RSS MiB" in table
    assert "window 64 >= 40x the items/s of window 1 (200 items)" in table


def test_scaleout_scenario_runs_ray_shards_to_the_same_archive(tmp_path: Path):
    """Two shards only: each Ray contender starts a cluster of its own (~10 s)."""
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--scenario", "scaleout", "--sizes", "300", "--repeat", "1",
         "--contender", "dsexport", "dsexport-ray-2",
         "--no-warmup", "--cache", str(tmp_path / "cache"), "--results", str(results)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (result_file,) = results.glob("*-scaleout-custom.json")
    (point,) = json.loads(result_file.read_text())["points"]
    children = {name: entry["runs"][0]["child"] for name, entry in point["contenders"].items()}
    assert {c["archive_bytes"] for c in children.values()} == {children["dsexport"]["archive_bytes"]}
    assert set(children) == {"dsexport", "dsexport-ray-2"} and children["dsexport-ray-2"]["shards"] == 2
    assert 0 < children["dsexport-ray-2"]["stitch_seconds"] < children["dsexport-ray-2"]["export_seconds"]
    assert "dsexport-ray-2 at 300: Ray start-up" in (results / "latest.md").read_text()


def test_coco_scenario_writes_both_box_formats_of_the_same_images(tmp_path: Path):
    """Datumaro's contender needs Datumaro, which this environment's Pillow excludes: the others run here."""
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--scenario", "coco", "--sizes", "60", "--repeat", "1", "--no-warmup",
         "--contender", "dsexport", "dsexport-ultralytics", "zipstream-plain", "crc32",
         "--cache", str(tmp_path / "cache"), "--results", str(results)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (point,) = json.loads(next(results.glob("*-coco-custom.json")).read_text())["points"]
    runs = {name: c["runs"][0] for name, c in point["contenders"].items()}
    assert all(r["exit_code"] == 0 and not r["error"] for r in runs.values()), runs
    assert runs["dsexport"]["child"]["entries"] == 60 + 3  # images and one JSON per split
    assert runs["dsexport-ultralytics"]["child"]["entries"] == 2 * 60 + 1  # images, label files, data.yaml
    assert runs["zipstream-plain"]["child"]["entries"] == 60 + 3
    (root,) = (tmp_path / "cache").glob("boxes-*")
    lines = (root / "boxes.jsonl").read_text().splitlines()
    assert json.loads(lines[0]) == {"categories": ["car", "person", "bike", "dog"]} and len(lines) == 61
    first = json.loads(lines[1])
    assert first["image"] == "images/train/img000000.png" and len(first["size"]) == 2  # the tree's path, COCO's


def test_image_scenario_measures_ours_to_file_and_stdout_against_the_write_floor(tmp_path: Path):
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--scenario", "yolo", "--sizes", "60", "--repeat", "1",
         "--contender", "dsexport", "dsexport-stdout", "zipstream-plain", "zip-cli", "cat-file",
         "--cache", str(tmp_path / "cache"), "--results", str(results)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (point,) = json.loads(next(results.glob("*-yolo-custom.json")).read_text())["points"]
    runs = {name: entry["runs"][-1] for name, entry in point["contenders"].items()}
    for name, run in runs.items():
        assert run["exit_code"] == 0 and not run["error"], (name, run)
    sizes = {name: runs[name]["child"]["archive_bytes"] for name in ("dsexport", "dsexport-stdout")}
    assert sizes["dsexport"] == sizes["dsexport-stdout"] > 60 * 100 * 1024, sizes  # to a file and through a pipe
    assert point["contenders"]["cat-file"]["command"][-1] == "<out>/archive.zip"
    table = (results / "latest.md").read_text()
    assert "| YOLO, 60 images of ~100 KiB: ours >= 0.8x cat-file |" in table
    assert "0.5x the rate of cat" not in table  # no target against the read floor


def test_the_report_knows_from_which_size_ours_runs_a_page_reader():
    from bench.report import PAGE_PROCESS_FROM as reported
    from engine.sources import PAGE_PROCESS_FROM

    assert reported == PAGE_PROCESS_FROM
