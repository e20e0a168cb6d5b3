"""The Ray engine on a local multi-node cluster (`ray.cluster_utils.Cluster`: a head and two workers, one CPU
each, on this host, as Ray's own tests do): rows spread over the nodes, a driver killed and resumed, a worker
node killed mid-job, a GPU unit refused where there is no GPU and placed one per GPU where there are (Ray's
declared resources: no real GPU here). Every job's output must equal the local engine's byte for byte.

One cluster for the module (~9 s to start here); the model is a tiny random BERT on torch-cpu-fp32, converted
once by the local reference run, so each Ray job costs its actors' start (~5 s: torch import) and a second of work.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

import siliconlab
from siliconlab.batch.job import JobOptions
from siliconlab.batch.local import run_job as run_local
from siliconlab.cli import app

ray = pytest.importorskip("ray", reason="ray is not installed (the batch extra)")
from ray.cluster_utils import Cluster  # noqa: E402

from siliconlab.batch import ray_engine  # noqa: E402

UNIT = "torch-cpu-fp32"
CHUNK = 4  # 300 rows -> 75 chunks: many commits to kill between
IN_FLIGHT_ROWS = (1 + ray_engine.IN_FLIGHT) * CHUNK  # the first commit and what the victim had in flight


class Setup:
    """The cluster, its worker nodes, the input and the local engine's output for it (the reference)."""

    def __init__(self, cluster: Cluster, workers: list, model: Path, source: Path, reference: Path):
        self.cluster, self.workers, self.model, self.source, self.reference = cluster, workers, model, source, reference

    def options(self, out: Path, **extra: object) -> JobOptions:
        return JobOptions(str(self.model), self.source, out, unit=UNIT, chunk_rows=CHUNK, **extra)

    def same_as_reference(self, out: Path) -> None:
        assert out.read_bytes() == self.reference.read_bytes()
        errors = out.with_name(out.name + ".errors.jsonl")
        assert errors.read_bytes() == self.reference.with_name(self.reference.name + ".errors.jsonl").read_bytes()
        assert not out.with_name(out.name + ".parts").exists()


def _input(path: Path, texts: list[str]) -> Path:
    """300 lines: real texts, an empty text, a line that is not JSON and one without the field (3 row errors)."""
    lines = [json.dumps({"id": i, "text": texts[i % len(texts)]}) for i in range(297)]
    lines[40] = json.dumps({"id": 40, "text": ""})
    lines.insert(100, "{not json")
    lines.insert(200, json.dumps({"id": -1, "body": "no text field"}))
    lines.insert(250, json.dumps({"id": -2, "text": "one more row"}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path, artifact_cache: Path, texts: list[str]
) -> Iterator[Setup]:
    # The raylets start from this process and their workers inherit its environment: the artifact cache, and
    # this tree's sources first (so the actors run the code under test, not another checkout's).
    saved = {name: os.environ.get(name) for name in ("SILICONLAB_CACHE", "PYTHONPATH")}
    os.environ["SILICONLAB_CACHE"] = str(artifact_cache)
    source_root = str(Path(siliconlab.__file__).resolve().parents[1])
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (source_root, saved["PYTHONPATH"]) if p)
    folder = tmp_path_factory.mktemp("ray-cluster")
    source = _input(folder / "in.jsonl", texts)
    reference = folder / "reference.jsonl"
    # threads=1: each actor runs on a 1-CPU node with 1 thread; equal threads give equal bytes. Run (and the
    # model converted) while the cluster starts, which mostly waits on its processes: ~6 s saved here.
    local = threading.Thread(
        target=run_local, args=(JobOptions(str(tiny_bert), source, reference, unit=UNIT, chunk_rows=CHUNK, threads=1),)
    )
    local.start()
    # A node SIGKILLed is noticed through the head's health checks: checked every 0.5 s, dead after 2 misses
    # (Ray's defaults, 3 s x 5, would make the node-kill test wait ~15 s).
    system = {"health_check_period_ms": 500, "health_check_failure_threshold": 2, "health_check_timeout_ms": 500}
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False, "_system_config": system}
    )
    try:
        workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING", configure_logging=False)
        local.join()
        assert reference.exists(), "the local reference run failed (its error is printed above)"
        yield Setup(cluster, workers, tiny_bert, source, reference)
    finally:
        ray.shutdown()
        cluster.shutdown()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _journal(out: Path) -> dict:
    try:
        return json.loads((out.with_name(out.name + ".parts") / "journal.json").read_text())["done"]
    except (OSError, ValueError, KeyError):
        return {}


def test_rows_spread_over_the_nodes_and_equal_the_local_engine(setup: Setup, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    recorded: set[str] = set()
    result = ray_engine.run_job(
        setup.options(out), on_progress=lambda rows, position: recorded.update(
            entry["node"] for entry in _journal(out).values()
        )
    )  # fmt: skip
    setup.same_as_reference(out)
    assert (result.rows, result.written, result.errors, result.unit) == (300, 297, 3, UNIT)
    assert len(result.nodes) == 3 and sum(result.nodes.values()) == 300, result.nodes  # one actor per 1-CPU node
    assert len(recorded) == 3  # the journal names the node of every committed chunk


def test_a_gpu_unit_is_refused_on_a_cluster_without_gpus(setup: Setup, tmp_path: Path) -> None:
    args = ["batch", str(setup.model), "--input", str(setup.source), "--out", str(tmp_path / "o.jsonl")]
    result = CliRunner().invoke(app, [*args, "--unit", "torch-cuda-fp16-graph", "--engine", "ray"])
    assert result.exit_code == 2, result.output
    assert "needs a GPU and the Ray cluster has none (3 node(s), 3 CPU(s), 0 GPU(s))" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "o.jsonl").exists()


def test_gpu_actors_take_one_declared_gpu_each(setup: Setup) -> None:
    """A node declaring 2 GPUs (Ray's resource, no device here): the plan puts one actor on each GPU with half
    the node's CPUs, and Ray hands each actor its own device id."""
    from siliconlab.batch.ray_placement import alive_nodes, plan

    gpu_node = setup.cluster.add_node(num_cpus=2, num_gpus=2)
    try:
        setup.cluster.wait_for_nodes()
        slots = plan(alive_nodes(), "torch-cuda-fp16-graph", gpu=True)
        assert [(s.gpus, s.cpus, s.threads) for s in slots] == [(1, 1, 1), (1, 1, 1)]
        assert {s.node.node_id for s in slots} == {gpu_node.node_id}

        @ray.remote
        def where() -> tuple[str, list]:
            return ray.get_runtime_context().get_node_id(), ray.get_gpu_ids()

        placed = ray.get([where.options(**slot.options()).remote() for slot in slots])
        assert {node for node, _ in placed} == {gpu_node.node_id}
        assert sorted(ids[0] for _, ids in placed) == [0, 1] and all(len(ids) == 1 for _, ids in placed)
    finally:
        setup.cluster.remove_node(gpu_node)


def test_a_killed_driver_resumes_to_the_same_output(setup: Setup, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    args = ["batch", str(setup.model), "--input", str(setup.source), "--out", str(out), "--unit", UNIT]
    args += ["--chunk-rows", str(CHUNK), "--engine", "ray", "--address", setup.cluster.address]
    proc = subprocess.Popen(
        [sys.executable, "-m", "siliconlab", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while len(_journal(out)) < 5 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, f"the job ended before the kill: {stderr.decode()[-2000:]}"
    committed = len(_journal(out))
    assert 5 <= committed < 75 and not out.exists(), committed

    resumed = CliRunner().invoke(app, [*args, "--actors", "2"])  # on the cluster this process is connected to
    assert resumed.exit_code == 0, resumed.output
    assert f"{committed * CHUNK} resumed from an earlier run" in resumed.output
    assert resumed.output.count("  node ") >= 2, resumed.output  # rows and rows/s per node in the summary
    setup.same_as_reference(out)


def test_a_worker_node_killed_mid_job_loses_no_row(setup: Setup, tmp_path: Path) -> None:
    """SIGKILL a worker node (its processes and raylet) at the first commit: its chunks go to the other actor, every
    row comes out once, in order. Two actors (the engine's own plan says on which nodes) start faster than three
    on this 2-core machine. Last in the module: the cluster has one node fewer afterwards."""
    from siliconlab.batch.ray_placement import alive_nodes, plan

    out = tmp_path / "out.jsonl"
    placed = {slot.node.node_id for slot in plan(alive_nodes(), UNIT, gpu=False, actors=2)}
    victim = next(node for node in setup.workers if node.node_id in placed)

    def kill_once(rows: int, position: float) -> None:
        """The machine dies: its worker processes (the actor among them) and its raylet, all SIGKILLed. Killing
        the raylet alone (`remove_node`) left the actor's process answering for another ~50 chunks here."""
        if victim not in setup.cluster.worker_nodes:
            return
        raylet = psutil.Process(victim.all_processes["raylet"][0].process.pid)
        for process in raylet.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        setup.cluster.remove_node(victim, allow_graceful=False)

    result = ray_engine.run_job(setup.options(out), actors=2, on_progress=kill_once)
    assert victim not in setup.cluster.worker_nodes
    setup.same_as_reference(out)
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert ids == [json.loads(line)["id"] for line in setup.reference.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == result.written == 297 and result.rows == sum(result.nodes.values()) == 300
    answered = sum(rows for label, rows in result.nodes.items() if label.startswith(victim.node_id[:8]))
    assert answered <= IN_FLIGHT_ROWS, result.nodes  # the victim answered only the chunks done before the kill
    ((label, redone),) = result.lost.items()  # the chunks sent to the dead actor were sent again, to the other
    assert label.startswith(victim.node_id[:8]) and redone >= 1
