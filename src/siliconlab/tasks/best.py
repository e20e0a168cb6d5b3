"""Which unit answers when the user says `unit="best"`, for every model kind.

The best unit that passed parity and was stable (not flagged for contention) in the latest bench of this model
on this machine: an encoder's fastest batch-1 real-text p50, a decoder's highest batch-1 decode tokens/s. Bench
leaves that record in the model's folder of the artifact store; a record from another machine (or none) falls
back to the kind's default order (units/registry.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from siliconlab.convert.manifest import write_json_atomic

if TYPE_CHECKING:
    from siliconlab.models.kinds import Kind
    from siliconlab.units.base import Unit

RECORD = ".bench-latest.json"


@dataclass(frozen=True)
class Ranking:
    """How one kind's bench rows rank its units: which rows count, which figure the record keeps, which way."""

    workload: str
    metric: str  # the row's figure, as the record names it
    higher_is_better: bool

    def counts(self, row: dict[str, Any]) -> bool:
        return row.get("workload") == self.workload and row.get("batch") == 1 and self.value(row) is not None

    def value(self, row: dict[str, Any]) -> float | None:
        if self.metric == "p50_ms":
            return (row.get("latency_ms") or {}).get("p50")
        return row.get(self.metric)  # decode rows only: a TTFT row (one new token) has no decode rate


ENCODER = Ranking("text", "p50_ms", higher_is_better=False)
GENERATION = Ranking("generation", "decode_tokens_per_s", higher_is_better=True)
RANKINGS: dict[Kind, Ranking] = {"encoder": ENCODER, "decoder": GENERATION, "seq2seq": GENERATION}


def machine_fingerprint(machine: dict[str, Any]) -> str:
    gpus = ",".join(g.get("name", "?") for g in machine.get("gpus") or [])
    return f"{machine.get('cpu')}|{machine.get('cores_logical')}|{gpus}"


def is_stable(row: dict[str, Any]) -> bool:
    from siliconlab.bench.contention import flagged

    return not flagged(row)


def write_record(model_dir: Path, result: dict[str, Any]) -> Path | None:
    """Keep, per model, the latest bench's batch-1 ranking rows (called by bench after each run): real-text
    latency for an encoder, decode tokens/s for a generative model. None when the result has no such row."""
    for ranking in (ENCODER, GENERATION):
        rows = [r for r in result.get("results", []) if ranking.counts(r)]
        if rows:
            break
    else:
        return None
    record = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_fingerprint(result.get("machine", {})),
        "metric": ranking.metric,
        "rows": [
            {
                "unit": r["unit"],
                ranking.metric: ranking.value(r),
                "parity_passed": (r.get("parity") or {}).get("passed") is True,
                "stable": is_stable(r),
            }
            for r in rows
        ],
    }
    path = model_dir / RECORD
    model_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, record)
    return path


def ranked_units(model_dir: Path, this_machine: dict[str, Any], kind: Kind = "encoder") -> tuple[list[str], str]:
    """Units to try in order, and why: from this machine's latest bench, else the kind's default order."""
    from siliconlab.units.registry import default_order

    fallback = default_order(kind)
    path = model_dir / RECORD
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return fallback, "no bench of this model on this machine yet: default order"
    if record.get("machine") != machine_fingerprint(this_machine):
        return fallback, "the latest bench of this model ran on another machine: default order"
    ranking = RANKINGS[kind]
    if record.get("metric", "p50_ms") != ranking.metric:  # records before "metric" came from encoder benches
        return fallback, f"the latest bench of this model did not measure {ranking.metric}: default order"
    good = [r for r in record["rows"] if r["parity_passed"] and r["stable"]]
    good.sort(key=lambda r: r[ranking.metric], reverse=ranking.higher_is_better)
    if not good:
        return fallback, "the latest bench has no stable, parity-passing unit: default order"
    return [r["unit"] for r in good], f"fastest stable unit in the bench of {record['created']}"


def candidates(kind: Kind, unit: str, model_dir: Path) -> tuple[list[Unit], str]:
    """(units to try in order, why): for "best" the ranked units that can run here, else the named unit (refused
    at once when it cannot run here)."""
    from siliconlab.bench.machine import machine_info
    from siliconlab.errors import UsageError
    from siliconlab.units import registry

    if unit != "best":
        chosen = registry.get(kind, unit)
        available = chosen.availability()
        if not available.ok:
            raise UsageError(f"unit '{unit}' cannot run here: {available.reason}")
        return [chosen], "chosen by the caller"
    names, why = ranked_units(model_dir, machine_info(), kind)
    units = [registry.REGISTRY[(kind, name)]() for name in names if (kind, name) in registry.REGISTRY]
    return [u for u in units if u.availability().ok], why
