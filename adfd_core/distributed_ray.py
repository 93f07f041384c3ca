"""Featurize and score on a Ray cluster, with the result a single process writes.

The inputs are cut into shards (adfd_core.shards); each shard is one Ray task that runs the same
per-file code as a local run (featurize with ``shard``, or sharded_scoring.score_shard) and commits
its shard file in ``OUTPUT.shards/``, a folder every node must see (a shared file system, as the
audio itself). The driver then merges the shards into OUTPUT and removes the folder. A shard file
that exists is finished, so a killed run, rerun with the same command, redoes only the unfinished
shards; a feature shard's ``.partial`` file resumes where its worker stopped. A task whose worker
dies is retried by Ray (MAX_RETRIES times) and resumes the same way.

Each task takes one GPU where the cluster has GPUs (and the device is not cpu), else one CPU.
Ray is imported only here, and only when asked for.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adfd_core.corpus import Utterance
from adfd_core.errors import AdfdError
from adfd_core.pipeline import Observer, Silent
from adfd_core.shards import Shard

if TYPE_CHECKING:
    from adfd_core.featurize import FeaturizeOptions, FeaturizeResult
    from adfd_core.scoretable import ScoreTable
    from adfd_core.sharded_scoring import ScoreJob

SHARD_INPUTS = 200  # inputs per shard when not told: a few seconds to minutes of work each, little lost to a kill
MAX_RETRIES = 3  # tries of a task after its worker dies
log = logging.getLogger(__name__)


class RayError(AdfdError):
    """Ray is missing, the cluster cannot be reached, or a task failed; one line."""


@dataclass(frozen=True)
class Cluster:
    """Where to run: ``address`` of a running cluster (None: a local Ray instance on this machine), and
    how many shards (None: one per SHARD_INPUTS inputs)."""

    address: str | None = None
    shards: int | None = None

    def shards_for(self, n_inputs: int) -> list[Shard]:
        count = self.shards or max(1, -(-n_inputs // SHARD_INPUTS))
        return [Shard(k, count) for k in range(1, count + 1)]


def work_dir(output: Path) -> Path:
    """Where the shards of ``output`` are committed until merged: ``feats.h5`` -> ``feats.h5.shards``."""
    return output.with_name(output.name + ".shards")


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayError("--ray needs Ray, which is not installed: pip install 'adfd[ray]'") from None
    return ray


def _connect(address: str | None) -> Any:
    """Ray, connected to the cluster at ``address`` or to a local instance (started if none runs)."""
    ray = _ray()
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False if address is None else None,
                     logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RayError(f"cannot reach the Ray cluster at {address or 'this machine'}: {exc}") from None
    return ray


def _resources(ray: Any, device: str) -> dict[str, float]:
    """One GPU per task where the cluster has some and the device allows, else one CPU."""
    if device != "cpu" and ray.cluster_resources().get("GPU", 0) >= 1:
        return {"num_gpus": 1, "num_cpus": 1}
    return {"num_cpus": 1}


def _run_shards(ray: Any, task: Callable, shards: Sequence[Shard], utterances: Sequence[Utterance], device: str,
                observer: Observer, done: Callable[[Shard], bool], arguments: Callable[[Shard], tuple]) -> None:
    """Run ``task(utterances, *arguments(shard), shard)`` on the cluster for every shard not yet ``done``;
    advance ``observer`` as shards finish and tell it of each failed input they report."""
    todo = [s for s in shards if not done(s)]
    size = {s: len(s.select(utterances)) for s in shards}
    observer.start(len(utterances), sum(size[s] for s in shards if s not in todo))
    resources = ray.cluster_resources()
    log.info("%d of %d shards to run (%d already done); Ray: %g CPUs, %g GPUs", len(todo), len(shards),
             len(shards) - len(todo), resources.get("CPU", 0), resources.get("GPU", 0))
    if not todo:
        return
    with contextlib.redirect_stdout(sys.stderr):  # Ray prints cluster events (a worker died, ...) to stdout: data only there
        _wait_for(ray, task, todo, size, utterances, device, observer, arguments)


def _wait_for(ray: Any, task: Callable, todo: Sequence[Shard], size: dict[Shard, int], utterances: Sequence[Utterance],
              device: str, observer: Observer, arguments: Callable[[Shard], tuple]) -> None:
    remote = ray.remote(task).options(max_retries=MAX_RETRIES, retry_exceptions=False, **_resources(ray, device))
    everything = ray.put(list(utterances))
    pending = {remote.remote(everything, *arguments(s), s): s for s in todo}
    rate = _Rate(len(utterances), len(utterances) - sum(size[s] for s in todo))
    try:
        while pending:
            finished, _ = ray.wait(list(pending), num_returns=1)
            shard = pending.pop(finished[0])
            try:
                failures = ray.get(finished[0])
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else exc
                raise RayError(f"shard {shard.index}/{shard.count}: {cause}") from None
            except ray.exceptions.RayError as exc:
                raise RayError(f"shard {shard.index}/{shard.count} was lost: {str(exc).splitlines()[0]}") from None
            for utt_id, path, reason in failures:
                observer.failed(Utterance(utt_id, Path(path), "unknown"), reason)
            observer.advance(size[shard])
            log.info("shard %d/%d done: %s", shard.index, shard.count, rate.advance(size[shard]))
    except BaseException:
        # Ending the job stops its tasks; cancelling them one by one (ray.cancel) can trip a check in Ray 2.60
        # ("Tried to complete task that was not pending") that aborts the driver.
        ray.shutdown()
        raise


class _Rate:
    """Inputs done of the total, the rate of this run and the time left, as one short line."""

    def __init__(self, total: int, done: int):
        self.total, self.done, self.start, self.before = total, done, time.monotonic(), done

    def advance(self, n: int) -> str:
        self.done += n
        per_s = (self.done - self.before) / max(time.monotonic() - self.start, 1e-9)
        left = round((self.total - self.done) / per_s) if per_s > 0 else 0
        return f"{self.done}/{self.total} inputs, {per_s:.3g}/s, ETA {left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}"


# --------------------------------------------------------------------------- featurize


def _featurize_shard(utterances: list[Utterance], output: str, options: FeaturizeOptions, inputs: dict, command: list[str],
                     shard: Shard) -> list[tuple[str, str, str]]:
    """A Ray task: featurize one shard into ``output``; the inputs that failed."""
    from adfd_core.featurize import featurize

    return featurize(utterances, Path(output), options, inputs=inputs, command=command, shard=shard).failures


def featurize_on_ray(utterances: Sequence[Utterance], output: Path, options: FeaturizeOptions, cluster: Cluster,
                     inputs: dict | None = None, command: list[str] | None = None,
                     observer: Observer | None = None) -> FeaturizeResult:
    """Featurize ``utterances`` into ``output`` on a Ray cluster; the file a single process writes (see the module docstring)."""
    from adfd_core.featurize import FeaturizeResult, run_identity, stored_specs, with_copies
    from adfd_core.shards import merge_features
    from adfd_core.store import FeatureFile, StoreError, identity_of

    observer = observer or Silent()
    output = Path(output)
    if output.exists() and not options.force:
        everything = with_copies(utterances, options.augment_copies, options.augment_seed)[0]
        if identity_of(output) != run_identity(everything, stored_specs(options), options):
            raise StoreError(f"{output}: exists and was made from other inputs or features; use --force to overwrite it")
        with FeatureFile(output) as ff:
            failed = [(x["id"], x["path"], x["reason"]) for x in ff.failures()]
        return FeaturizeResult(output, skipped=len(utterances) - len(failed), up_to_date=True, failures=failed)
    ray = _connect(cluster.address)
    work = work_dir(output)
    if options.force and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    shards = cluster.shards_for(len(utterances))
    path_of = {s: work / f"{s.name}.h5" for s in shards}
    task_options = replace(options, force=False, jobs=1)
    _run_shards(ray, _featurize_shard, shards, utterances, options.device, observer,
                lambda s: path_of[s].exists(), lambda s: (str(path_of[s]), task_options, inputs or {}, command or []))
    with _stale_shards_hint(work, "rerun with --force to start over"):
        merged = merge_features([path_of[s] for s in shards], output, command, force=options.force)
    shutil.rmtree(work)
    return FeaturizeResult(output, written=merged.utterances, failures=merged.failures)


# --------------------------------------------------------------------------- score


def _score_shard(utterances: list[Utterance], output: str, job: ScoreJob, command: list[str], shard: Shard) -> list[tuple[str, str, str]]:
    """A Ray task: score one shard into the shard table ``output``; the recordings that failed."""
    from adfd_core.sharded_scoring import score_shard

    return score_shard(utterances, job, shard, Path(output), command)  # written whole or not at all


def score_on_ray(utterances: Sequence[Utterance], job: ScoreJob, output: Path, cluster: Cluster,
                 command: list[str] | None = None, observer: Observer | None = None) -> ScoreTable:
    """Score ``utterances`` on a Ray cluster, committing shard tables beside ``output`` (a file);
    the single run's table, for the caller to write. The shard folder is removed by ``finish``."""
    from adfd_core.shards import merge_scores

    observer = observer or Silent()
    ray = _connect(cluster.address)
    work = work_dir(Path(output))
    work.mkdir(parents=True, exist_ok=True)
    shards = cluster.shards_for(len(utterances))
    path_of = {s: work / f"{s.name}.tsv" for s in shards}
    job = replace(job, models=tuple(p.resolve() for p in job.models) if job.models else None, jobs=1)
    _run_shards(ray, _score_shard, shards, utterances, job.device, observer, lambda s: path_of[s].exists(),
                lambda s: (str(path_of[s]), job, command or []))
    with _stale_shards_hint(work, f"remove {work} to start over"):
        return merge_scores([path_of[s] for s in shards], command)


@contextlib.contextmanager
def _stale_shards_hint(work: Path, remedy: str) -> Iterator[None]:
    """A ShardError while merging means shards of an earlier, different run were left in ``work``: say what to do."""
    from adfd_core.shards import ShardError

    try:
        yield
    except ShardError as exc:
        raise ShardError(f"{exc} ({work} holds shards of an earlier run with other inputs or options: {remedy})") from None


def finish(output: Path) -> None:
    """Remove ``output``'s shard folder once the merged result is written."""
    shutil.rmtree(work_dir(Path(output)), ignore_errors=True)
