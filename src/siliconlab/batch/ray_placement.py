"""Where the Ray engine's actors go: one per node sized to its CPUs, or one per GPU where the unit needs one.

Why not Ray's default (`num_cpus=1` actors wherever they fit): an actor loads the model once and then runs its
unit with `threads` intra-op threads, so one actor per node using all of the node's CPUs keeps one copy of the
weights per node and no actors fighting for cores; a CUDA unit runs on one device, so it gets one actor per GPU
(`num_gpus=1`; Ray sets CUDA_VISIBLE_DEVICES to that device) and the node's CPUs shared among them. The plan is
made from the cluster's nodes before any actor starts, so a cluster that cannot run the unit is refused in one
line instead of leaving actors pending forever.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from siliconlab.errors import UsageError


@dataclass(frozen=True)
class Node:
    """One alive Ray node and what it offers (its total resources, as `ray.nodes()` reports them)."""

    node_id: str
    address: str
    cpus: float
    gpus: float

    @property
    def label(self) -> str:
        return f"{self.node_id[:8]}@{self.address}"


@dataclass(frozen=True)
class Slot:
    """One actor to start: the node it is pinned to, the resources it reserves, the threads its unit uses."""

    node: Node
    cpus: float
    gpus: int
    threads: int

    def options(self) -> dict[str, Any]:
        """`ActorClass.options(...)`: pinned to the node (hard affinity: the plan sized the actor to it)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        return {
            "num_cpus": self.cpus,
            "num_gpus": self.gpus,
            "scheduling_strategy": NodeAffinitySchedulingStrategy(self.node.node_id, soft=False),
        }


def alive_nodes(wait_s: float = 10.0) -> list[Node]:
    """The cluster's alive nodes, largest first. Nodes still registering are waited for briefly."""
    import ray

    deadline = time.monotonic() + wait_s
    while True:
        nodes = [
            Node(
                n["NodeID"],
                n.get("NodeManagerAddress", "?"),
                n["Resources"].get("CPU", 0.0),
                n["Resources"].get("GPU", 0.0),
            )
            for n in ray.nodes()
            if n.get("Alive")
        ]
        if nodes or time.monotonic() > deadline:
            return sorted(nodes, key=lambda n: (-n.gpus, -n.cpus, n.node_id))
        time.sleep(0.2)


def needs_gpu(unit: str, nodes: list[Node]) -> bool:
    """A named CUDA unit needs a GPU; 'best' takes one where the cluster has GPUs (the default order puts the
    CUDA units first where they can run)."""
    if unit == "best":
        return any(node.gpus >= 1 for node in nodes)
    from siliconlab.units import get_unit

    return get_unit(unit).device == "cuda"  # an unknown name is refused here, before any actor starts


def plan(nodes: list[Node], unit: str, gpu: bool, actors: int | None = None) -> list[Slot]:
    """The actors to start: per node from its CPUs (or GPUs when `gpu`), or `actors` spread over the nodes by
    capacity. Refuses, in one line, a cluster without what the unit needs."""
    if actors is not None and actors < 1:
        raise UsageError(f"--actors must be >= 1, got {actors}")
    cpus, gpus = sum(n.cpus for n in nodes), sum(int(n.gpus) for n in nodes)
    shape = f"{len(nodes)} node(s), {cpus:g} CPU(s), {gpus} GPU(s)"
    if gpu:
        hosts = [n for n in nodes if n.gpus >= 1]
        if not hosts:
            raise UsageError(f"unit '{unit}' needs a GPU and the Ray cluster has none ({shape}): choose a CPU --unit")
        capacity = {n.node_id: int(n.gpus) for n in hosts}
        if actors is not None and actors > gpus:
            raise UsageError(f"--actors {actors} asks for more GPU actors than the cluster's {gpus} GPU(s) ({shape})")
    else:
        hosts = [n for n in nodes if n.cpus >= 1]
        if not hosts:
            raise UsageError(f"the Ray cluster has no node with a whole CPU ({shape})")
        capacity = {n.node_id: 1 for n in hosts}
    counts = dict(capacity) if actors is None else _spread(hosts, actors, gpu)
    slots: list[Slot] = []
    for node in hosts:
        count = counts.get(node.node_id, 0)
        if not count:
            continue
        share = node.cpus / count
        # A whole number of CPUs where they suffice (threads = CPUs); a fraction when more actors than CPUs.
        reserve = math.floor(share) if share >= 1 else share
        slots.extend(Slot(node, reserve, 1 if gpu else 0, max(1, math.floor(share))) for _ in range(count))
    return slots


def _spread(hosts: list[Node], actors: int, gpu: bool) -> dict[str, int]:
    """`actors` over the hosts, each next actor to the node where it gets the most CPUs (for a GPU unit: among
    nodes with a GPU still free), so threads per actor stay as even as the nodes allow."""
    counts = {n.node_id: 0 for n in hosts}
    for _ in range(actors):
        free = [n for n in hosts if not gpu or counts[n.node_id] < int(n.gpus)]
        best = max(free, key=lambda n: n.cpus / (counts[n.node_id] + 1))
        counts[best.node_id] += 1
    return counts


class ChunkActor:
    """One Ray actor: loads the unit once, then answers the usable texts of one chunk per call.

    It returns the same `task.Outcome` the local engine computes for that chunk, so the driver commits it
    through the same journal and writers: the batches are planned from the chunk's own rows, hence results
    equal the local engine's (byte for byte at equal threads)."""

    def __init__(self, model: str, unit: str, budget: int, threads: int):
        import ray

        from siliconlab.batch.task import TaskRunner

        self.runner = TaskRunner(model, unit, budget, threads)
        context = ray.get_runtime_context()
        self.node = context.get_node_id()

    def describe(self) -> tuple[str, str]:
        """(the unit this actor resolved, its node id): the driver checks every actor resolved the same unit."""
        return self.runner.unit, self.node

    def answer(self, index: int, texts: list[Any], field: str) -> tuple[int, Any, str]:
        return index, self.runner.run(texts, field), self.node
