"""Running shards on Ray: a Ray Data ``Datasink`` whose write tasks write parts.

Ray is imported here, and only when a scale-out export runs (``--ray``).
Each shard is one row of a Ray dataset, in a block of its own, so each write
task writes one part (or, if Ray bundles blocks, several in a row). A task
whose worker dies is retried by Ray (``max_retries``) and writes its part
from scratch under a new attempt tag; an error of the export itself (a
missing blob, a bad value) is not retried: it would fail the same way.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.errors import DsexportError, InvalidInput, ShardFailed
from engine.scaleout.parts import PartManifest, PartSpec, run_part
from engine.sources import Source

__all__ = ["cluster_cpus", "ray_session", "rerun_part", "write_parts"]

_ATTEMPT = ".attempt"


def _ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise InvalidInput("--ray needs Ray: pip install 'dsexport[ray]'") from None
    return ray


@contextmanager
def ray_session(address: str, num_cpus: int | None = None) -> Iterator[None]:
    """Connect to Ray for the export: ``local`` starts a cluster on this machine
    (shut down afterwards), ``auto`` joins the one the environment names
    (``RAY_ADDRESS`` or a running local head), anything else is a Ray address.
    An already connected process (a test session) keeps its connection.
    """
    ray = _ray()
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # no per-run INFO chatter on stderr
    if ray.is_initialized():
        yield
        return
    if address == "local":
        ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    else:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def cluster_cpus() -> int:
    """CPUs of the connected cluster: the default number of shards."""
    return max(1, int(_ray().cluster_resources().get("CPU", 1)))


def _run_attempt(spec: PartSpec, source_factory: Callable[[], Source]) -> PartManifest:
    """One attempt at a part, leaving a marker so a failure can be pinned on its shard."""
    if not spec.run_dir.startswith("s3://"):  # parts in a bucket: failures are reported by Ray's error alone
        marker = Path(spec.run_dir) / f"s{spec.shard.index:05d}-{os.getpid()}-{secrets.token_hex(4)}{_ATTEMPT}"
        marker.touch()
    try:
        return run_part(spec, source_factory)
    except DsexportError as exc:
        raise ShardFailed(f"{spec.shard.describe()}: {exc}") from None


def _parts_sink_class() -> type:
    """The Datasink subclass, defined once Ray is importable."""
    from ray.data.block import BlockAccessor
    from ray.data.datasource import Datasink

    class PartsDatasink(Datasink):
        """Write tasks write parts; the driver collects their manifests."""

        def __init__(self, specs: dict[int, PartSpec], source_factory: Callable[[], Source]) -> None:
            self._specs = specs
            self._source_factory = source_factory
            self.manifests: list[PartManifest] = []

        def write(self, blocks: Iterable[Any], ctx: Any) -> list[PartManifest]:
            out = []
            for block in blocks:
                for row in BlockAccessor.for_block(block).iter_rows(public_row_format=True):
                    out.append(_run_attempt(self._specs[int(row["shard"])], self._source_factory))
            return out

        def on_write_complete(self, write_result: Any) -> None:
            found = [m for returned in write_result.write_returns for m in returned]
            self.manifests = sorted(found, key=lambda m: m.shard.index)

        def get_name(self) -> str:
            return "DsexportParts"

    return PartsDatasink


def write_parts(
    specs: list[PartSpec], source_factory: Callable[[], Source], *, max_retries: int
) -> list[PartManifest]:
    """Write every shard's part as the write tasks of a Ray dataset; manifests in shard order.

    A shard that still fails after its retries raises :class:`ShardFailed`
    naming the shard and its item range.
    """
    ray = _ray()
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    sink = _parts_sink_class()({s.shard.index: s for s in specs}, source_factory)
    rows = [{"shard": s.shard.index} for s in specs]
    dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
    try:
        dataset.write_datasink(sink, ray_remote_args={"max_retries": max_retries, "num_cpus": 1})
    except Exception as exc:
        raise _shard_error(exc, specs) from None
    if len(sink.manifests) != len(specs):
        raise ShardFailed(f"{len(specs) - len(sink.manifests)} shard(s) returned no part")
    return sink.manifests


def rerun_part(spec: PartSpec, source_factory: Callable[[], Source], *, max_retries: int) -> PartManifest:
    """Run one shard again as a plain Ray task (a re-run seeded with earlier claims)."""
    ray = _ray()
    task = ray.remote(_run_attempt).options(max_retries=max_retries, num_cpus=1)
    try:
        return ray.get(task.remote(spec, source_factory))
    except Exception as exc:
        raise _shard_error(exc, [spec]) from None


def _shard_error(exc: BaseException, specs: list[PartSpec]) -> DsexportError:
    """The error to report for a failed Ray write: ours if a task raised one, else
    the shard whose attempts ran out (its worker kept dying)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current) is ShardFailed:  # ours, not Ray's wrapper class around it
            return ShardFailed(current.args[0])
        current = getattr(current, "cause", None) or current.__cause__ or current.__context__
    run_dir = Path(specs[0].run_dir)
    attempts: dict[int, int] = {}
    for marker in run_dir.glob(f"*{_ATTEMPT}"):
        attempts[int(marker.name[1:6])] = attempts.get(int(marker.name[1:6]), 0) + 1
    done = {int(p.name[1:6]) for p in run_dir.glob("*.zipdata")}
    failed = [s for s in specs if s.shard.index in attempts and s.shard.index not in done]
    summary = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}".rstrip(": ")
    if not failed:
        return ShardFailed(f"the scale-out export failed: {summary}")
    worst = max(failed, key=lambda s: (attempts[s.shard.index], -s.shard.index))
    return ShardFailed(
        f"{worst.shard.describe()} failed after {attempts[worst.shard.index]} attempt(s) ({summary})"
    )
