"""Which unit answers when the user says `unit="best"`.

The fastest unit that passed parity and was stable (not flagged for contention) in the latest bench of this
model on this machine, on its batch-1 real-text workload. Bench leaves that record in the model's folder of
the artifact store; a record from another machine (or none) falls back to a documented default order.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from siliconlab.convert.manifest import write_json_atomic

RECORD = ".bench-latest.json"
#: Without a bench record: the units that are usually fastest first, each only where it can run. On short texts
#: (what tasks see) ONNX Runtime's dynamic int8 led on AMD Zen 5 (MiniLM, real sentence: 0.80 ms vs 0.93 ms for
#: static int8, docs/units.md); static int8 and bf16 OpenVINO run only on CPUs with int8 dot products / bf16
#: arithmetic and lead on long sequences (bert-base S128: 18.2 vs 20.6 ms) — a bench record reorders them.
DEFAULT_ORDER = (
    "torch-cuda-bf16-graph",
    "torch-cuda-fp16-graph",
    "coreml-ane",
    "onnxruntime-cpu-int8",
    "openvino-cpu-int8-static",
    "openvino-cpu-bf16",
    "onnxruntime-cpu-fp32",
    "openvino-cpu-fp32",
    "torch-cpu-fp32",
)


def machine_fingerprint(machine: dict[str, Any]) -> str:
    gpus = ",".join(g.get("name", "?") for g in machine.get("gpus") or [])
    return f"{machine.get('cpu')}|{machine.get('cores_logical')}|{gpus}"


def is_stable(row: dict[str, Any]) -> bool:
    from siliconlab.bench.contention import flagged

    return not flagged(row)


def write_record(model_dir: Path, result: dict[str, Any]) -> Path | None:
    """Keep, per model, the latest bench's batch-1 real-text ranking (called by bench after each run)."""
    rows = [r for r in result.get("results", []) if r.get("workload") == "text" and r.get("batch") == 1]
    if not rows:
        return None
    record = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_fingerprint(result.get("machine", {})),
        "rows": [
            {
                "unit": r["unit"],
                "p50_ms": r["latency_ms"]["p50"],
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


def ranked_units(model_dir: Path, this_machine: dict[str, Any]) -> tuple[list[str], str]:
    """Units to try in order, and why: from this machine's latest bench, else the default order."""
    path = model_dir / RECORD
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return list(DEFAULT_ORDER), "no bench of this model on this machine yet: default order"
    if record.get("machine") != machine_fingerprint(this_machine):
        return list(DEFAULT_ORDER), "the latest bench of this model ran on another machine: default order"
    good = sorted((r for r in record["rows"] if r["parity_passed"] and r["stable"]), key=lambda r: r["p50_ms"])
    if not good:
        return list(DEFAULT_ORDER), "the latest bench has no stable, parity-passing unit: default order"
    return [r["unit"] for r in good], f"fastest stable unit in the bench of {record['created']}"
