"""The Ray engine: the local engine's job with the model on Ray actors, on a local Ray or any cluster.

The driver reads the input with the local engine's readers, chunk by chunk, and sends each chunk's usable texts
to an actor (`ray_placement.ChunkActor`: one per node sized to its CPUs, or one per GPU); each answer streams
back and is committed through the same journal as the local engine (part files, then the journal line, with the
node that answered). Hence the same guarantees: the output lock, the content fingerprint, committed chunks
surviving a killed driver (a rerun of the same command — on either engine — continues), and an output equal to
the local engine's byte for byte at equal threads (same rows, order, results, errors file). An actor that dies
(its node was lost) has its chunks sent to the others; with none left the job stops, its commits kept.
Why not Ray Data: its blocks are not our chunks, so results (int8 units quantise per batch) and row failures
(its Arrow reader parses differently) differed from the local engine's, and nothing could be committed per chunk.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from siliconlab.batch.io import Chunk, Format, open_format
from siliconlab.batch.job import (
    Clock,
    JobOptions,
    JobResult,
    OnProgress,
    OnStart,
    check_paths,
    commit_chunk,
    complete,
    exclusive_output,
    open_resume,
    start_over,
    usable_rows,
)
from siliconlab.batch.journal import Journal
from siliconlab.batch.ray_placement import ChunkActor, Slot, alive_nodes, needs_gpu, plan
from siliconlab.batch.task import check_batchable
from siliconlab.errors import SiliconlabError, UsageError

if TYPE_CHECKING:
    from siliconlab.tasks.task import Task

#: Chunks queued per actor: one answered while the next is in flight keeps an actor busy through the driver's
#: commit (a few ms of fsyncs) without holding many chunks' rows in the driver.
IN_FLIGHT = 2
#: How long actors may take to be placed and load their unit (a first use converts the model on that node).
READY_S = 600.0


def describe(model: str) -> tuple[Task, list[str]]:
    """(task, labels) on the driver without loading weights: the actors load the model, the driver only writes."""
    from siliconlab.models import resolve
    from siliconlab.models.hf_directory import task_of as head_of_config
    from siliconlab.tasks.registry import task_claiming, task_for_head

    source = resolve(model)
    task = task_claiming(model) or task_for_head(head_of_config(source.config))
    check_batchable(model, task)
    return task, task.labels(source.config)


def run_job(
    options: JobOptions,
    address: str | None = None,
    actors: int | None = None,
    on_progress: OnProgress | None = None,
    on_start: OnStart | None = None,
) -> JobResult:
    """Run (or resume) the job with its model on Ray actors; `actors=None` places them from the cluster's
    CPUs/GPUs. The driver holds the output's lock and writes every file."""
    if options.out.suffix.lower() == ".npy":  # before check_paths, which --overwrite lets delete the output
        raise UsageError("--out .npy is written by the local engine; --engine ray writes the input's format")
    check_paths(options)
    with exclusive_output(options.out):
        start_over(options)
        return _run_locked(options, address, actors, on_progress, on_start)


def _run_locked(
    options: JobOptions,
    address: str | None,
    actors: int | None,
    on_progress: OnProgress | None,
    on_start: OnStart | None,
) -> JobResult:
    resume = open_resume(options)
    if isinstance(resume, JobResult):
        return resume
    task, labels = describe(options.model)
    handler = open_format(options.input, options.text_field, task, labels)
    journal = resume.journal
    done = journal.done if journal else {}
    if on_start is not None:
        on_start(handler.total, handler.progress_unit, sum(v["rows"] for v in done.values()))
    result = JobResult(options.out, journal.unit if journal else options.unit)
    clock = Clock()
    pool: Pool | None = None
    try:
        for chunk in handler.chunks(options.chunk_rows, set(done)):
            if chunk.index in done:
                result.resumed_rows += chunk.count
                result.written += done[chunk.index]["kept"]
                result.errors += done[chunk.index]["errors"]
                result.rows += chunk.count
                continue
            if pool is None:  # Ray starts only when a chunk needs answering (not for an empty or finished input)
                pool = Pool(options, address, actors, result.unit, result.lost)
                result.unit, result.startup_s = pool.unit, clock.seconds()
                if journal is None:
                    journal = Journal.create(options.out, resume.stamp, resume.command, pool.unit)
                pool.commit = _committer(handler, journal, result, on_progress)
            pool.submit(chunk)
        if pool is not None:
            pool.drain()
    finally:
        if pool is not None:
            pool.close()
    if journal is None:  # nothing needed answering: an empty input
        journal = Journal.create(options.out, resume.stamp, resume.command, result.unit)
    result.errors_file = complete(options, handler, journal, resume.identity)
    result.seconds = clock.seconds()
    return result


Commit = Callable[[Chunk, list[int], Any, str], None]


def _committer(handler: Format, journal: Journal, result: JobResult, on_progress: OnProgress | None) -> Commit:
    """Commit one answered chunk (driver side) and count it; chunks may come back out of order."""
    furthest = [0.0]

    def commit(chunk: Chunk, usable: list[int], outcome: Any, node: str) -> None:
        kept, errors = commit_chunk(handler, journal, chunk, usable, outcome, node)
        result.rows += chunk.count
        result.written += kept
        result.errors += errors
        result.truncated += outcome.truncated
        result.shapes.extend(outcome.shapes)
        result.nodes[node] = result.nodes.get(node, 0) + chunk.count
        furthest[0] = max(furthest[0], chunk.position)
        if on_progress is not None:
            on_progress(result.rows, furthest[0])

    return commit


class Pool:
    """The placed actors and the chunks in flight on them; a lost actor's chunks go to the others."""

    def __init__(self, options: JobOptions, address: str | None, actors: int | None, unit: str, lost: dict[str, int]):
        import ray

        self.started = not ray.is_initialized()
        if self.started:
            _start_ray(address)
        self.actors: list[Any] = []
        self.field = options.text_field
        self.commit: Commit | None = None
        self.flying: dict[Any, tuple[Any, Chunk, list[int], list[Any]]] = {}
        self.lost = lost  # node label -> chunks redone after its actor died (the job's result holds it)
        self.homes: dict[int, str] = {}  # id(actor) -> its node's label
        try:
            nodes = alive_nodes()
            self.labels = {node.node_id: node.label for node in nodes}
            slots = plan(nodes, unit, needs_gpu(unit, nodes), actors)
            self.actors, units = _spawn(slots, options, unit)
            self.homes = {id(actor): slot.node.label for actor, slot in zip(self.actors, slots)}
            self.unit = _agreed_unit(units, unit)
        except BaseException:
            self.close()
            raise

    def submit(self, chunk: Chunk) -> None:
        """Send a chunk to the least-loaded actor, first collecting answers while every actor is full."""
        while self.flying and len(self.flying) >= IN_FLIGHT * len(self.actors):
            self._collect()
        usable, texts = usable_rows(chunk)
        self._send(chunk, usable, texts)

    def drain(self) -> None:
        while self.flying:
            self._collect()

    def _send(self, chunk: Chunk, usable: list[int], texts: list[Any]) -> None:
        if not self.actors:
            raise SiliconlabError(
                "every Ray actor was lost (their nodes left the cluster): the committed chunks are kept; rerun the "
                "same command to continue"
            )
        load = {id(a): 0 for a in self.actors}
        for actor, *_ in self.flying.values():
            load[id(actor)] += 1
        actor = min(self.actors, key=lambda a: load[id(a)])
        self.flying[actor.answer.remote(chunk.index, texts, self.field)] = (actor, chunk, usable, texts)

    def _collect(self) -> None:
        import ray
        from ray.exceptions import RayActorError

        (ref,), _ = ray.wait(list(self.flying), num_returns=1)
        actor, chunk, usable, texts = self.flying.pop(ref)
        try:
            _, outcome, node = ray.get(ref)
        except RayActorError:  # the actor or its node died: never again send it work; redo its chunks elsewhere
            self.actors = [a for a in self.actors if a is not actor]
            lost = [key for key, (owner, *_) in self.flying.items() if owner is actor]
            retry = [(chunk, usable, texts)] + [self.flying.pop(key)[1:] for key in lost]
            home = self.homes.get(id(actor), "?")
            self.lost[home] = self.lost.get(home, 0) + len(retry)
            for again, again_usable, again_texts in sorted(retry, key=lambda item: item[0].index):
                self._send(again, again_usable, again_texts)
            return
        except Exception as exc:  # a failure inside the actor (RayTaskError): its cause, in one line
            raise SiliconlabError(f"the Ray job failed on chunk {chunk.index}: {_cause(exc)}") from None
        assert self.commit is not None
        self.commit(chunk, usable, outcome, self.labels.get(node, node[:8]))

    def close(self) -> None:
        """Stop the actors (they hold a model each) and the Ray this job started; a cluster stays up."""
        import ray

        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
        if self.started:
            ray.shutdown()


def _spawn(slots: list[Slot], options: JobOptions, unit: str) -> tuple[list[Any], list[str]]:
    """Start one actor per slot and wait until each has loaded the unit; (actors, the unit each resolved).
    A failure to load says why, in one line."""
    import ray
    from ray.exceptions import GetTimeoutError

    # Any: ray's stubs type the decorated class as the class itself or a function, never as an actor class
    remote: Any = ray.remote(max_restarts=0, max_task_retries=0)(ChunkActor)
    actors = [
        remote.options(**slot.options()).remote(options.model, unit, options.tokens_per_batch, slot.threads)
        for slot in slots
    ]
    try:
        described = ray.get([actor.describe.remote() for actor in actors], timeout=READY_S)
    except GetTimeoutError:
        for actor in actors:
            ray.kill(actor)
        raise SiliconlabError(
            f"the Ray actors were not all placed and loaded within {READY_S:.0f} s (another job may hold the "
            "cluster's CPUs/GPUs): try again or pass a smaller --actors"
        ) from None
    except Exception as exc:
        for actor in actors:
            ray.kill(actor)
        raise SiliconlabError(f"a Ray actor could not load '{options.model}' on '{unit}': {_cause(exc)}") from None
    return actors, [resolved for resolved, _ in described]


def _agreed_unit(resolved: list[str], unit: str) -> str:
    """The one unit every actor resolved: 'best' is decided per node, and a job's rows must all come from one
    unit (the journal records it, and a resume reuses it)."""
    units = sorted(set(resolved))
    if len(units) > 1:
        raise UsageError(
            f"--unit {unit} resolved to different units on different nodes ({', '.join(units)}): pass one of them "
            "as --unit"
        )
    return units[0]


def _cause(exc: BaseException) -> str:
    """The innermost error under Ray's wrappers (RayTaskError.cause / __cause__), as one line."""
    for _ in range(8):
        inner = getattr(exc, "cause", None) or exc.__cause__
        if not isinstance(inner, BaseException) or inner is exc:
            break
        exc = inner
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300] if lines else ''}"


def _start_ray(address: str | None) -> None:
    """A local Ray (one node with the machine's physical cores, no dashboard) or the cluster at `address`; one
    retry, since a raylet on a busy machine can miss Ray's fixed 30 s start-up wait. The local node's CPUs are
    the local engine's default threads, so its one actor runs as many threads (and gives the same bytes)."""
    import ray

    from siliconlab.bench.machine import default_threads

    local = {"num_cpus": default_threads(), "include_dashboard": False}
    kwargs: dict[str, Any] = {"address": address} if address else local
    if not address:
        _local_auth()
    for attempt in (1, 2):
        try:
            ray.init(log_to_driver=False, logging_level=logging.WARNING, configure_logging=False, **kwargs)
            return
        except Exception as exc:  # Ray raises bare Exception / ConnectionError when it cannot start or connect
            ray.shutdown()
            if attempt == 2:
                where = f"at {address}" if address else "locally"
                raise SiliconlabError(f"Ray could not start {where}: {str(exc).splitlines()[0][:300]}") from None


#: The token of the local Ray this process started first (see _local_auth).
_PROCESS_TOKEN = ""


def _local_auth() -> None:
    """A local Ray listens on every interface (its gRPC servers bind the wildcard address; no setting of Ray 2.60
    binds them to loopback), so its token authentication must stay on: RAY_AUTH_MODE other than `token` is
    refused. The token is a fresh one in this process's environment, which its Ray processes inherit and only its
    user can read — not Ray's default `~/.ray/auth_token`, which Ray writes 0644 under umask 022."""
    mode = os.environ.get("RAY_AUTH_MODE")
    if mode is not None and mode.strip().lower() != "token":
        raise UsageError(f"RAY_AUTH_MODE={mode} would start the local Ray without authentication while it listens "
                         "on every interface: unset it (token authentication is then on)")  # fmt: skip
    if not os.environ.get("RAY_AUTH_TOKEN") and not os.environ.get("RAY_AUTH_TOKEN_PATH"):
        # One token per process: Ray's core reads the token once and keeps it, so a second local Ray started by
        # this process under a new token would refuse its own driver ("Failed to start GCS").
        global _PROCESS_TOKEN
        _PROCESS_TOKEN = _PROCESS_TOKEN or secrets.token_hex(32)
        os.environ["RAY_AUTH_TOKEN"] = _PROCESS_TOKEN
