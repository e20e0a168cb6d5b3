"""`siliconlab eval`: accuracy, macro-F1, confusion matrix and latency per unit on held-out data.

Every unit answers the same texts; torch-cpu-fp32 is the reference and each unit's accuracy delta against it
is reported, flagged when more than FLAG_POINTS below — an int8 unit must not lose accuracy silently.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from siliconlab.errors import UsageError

REFERENCE_UNIT = "torch-cpu-fp32"
FLAG_POINTS = 0.5
DEFAULT_LIMIT = 1000
EVAL_RECORD = ".eval-latest.json"


@dataclass
class EvalData:
    texts: list[str]
    labels: list[str]
    description: str


def builtin_data(task: str, limit: int | None) -> EvalData:
    from siliconlab.data.tasks import TASKS, split, split_digest

    test = split(task, "test", limit=limit)
    described = f"{TASKS[task].description}; held-out split ({len(test)} rows, digest {split_digest(test)[:12]})"
    return EvalData(test["text"].tolist(), test["label"].tolist(), described)


def file_data(path: Path, text_field: str, label_field: str, limit: int | None) -> EvalData:
    """A CSV (header row) or JSONL file with a text and a label column."""
    if not path.is_file():
        raise UsageError(f"no such data file: {path}")
    rows: list[dict[str, Any]] = []
    try:
        if path.suffix.lower() in (".jsonl", ".json"):
            with path.open(encoding="utf-8") as handle:
                rows = [json.loads(line) for line in handle if line.strip()]
        else:
            with path.open(encoding="utf-8", newline="") as handle:
                rows = list(csv.DictReader(handle))
    except (UnicodeDecodeError, json.JSONDecodeError, csv.Error) as exc:
        raise UsageError(
            f"{path} could not be read as {'JSONL' if path.suffix == '.jsonl' else 'CSV'}: {exc}"
        ) from None
    if not rows:
        raise UsageError(f"{path} has no rows")
    missing = [f for f in (text_field, label_field) if f not in rows[0]]
    if missing:
        raise UsageError(f"{path} has no field(s) {', '.join(missing)}: its fields are {', '.join(rows[0])}")
    rows = rows[:limit] if limit else rows
    return EvalData(
        [str(r[text_field]) for r in rows], [str(r[label_field]) for r in rows], f"{path} ({len(rows)} rows)"
    )


def metrics(truth: list[str], predicted: list[str | None], labels: list[str]) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1, macro-F1 and the confusion matrix (rows = truth)."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=int)
    unanswered = 0
    for t, p in zip(truth, predicted):
        if p is None:
            unanswered += 1
            continue
        matrix[index[t], index[p]] += 1
    per_class = {}
    for label, i in index.items():
        tp = matrix[i, i]
        precision = tp / matrix[:, i].sum() if matrix[:, i].sum() else 0.0
        recall = tp / matrix[i, :].sum() if matrix[i, :].sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": float(precision), "recall": float(recall), "f1": float(f1)}
    return {
        "accuracy": float(np.trace(matrix) / max(len(truth), 1)),
        "macro_f1": float(np.mean([c["f1"] for c in per_class.values()])),
        "per_class": per_class,
        "confusion": {"labels": labels, "matrix": matrix.tolist()},
        "unanswered": unanswered,
    }


def evaluate_unit(model: str, unit: str, data: EvalData, cache: Path | None, threads: int | None) -> dict[str, Any]:
    """One unit's row. A unit that fails its parity gate is still measured, from an artifact built into a
    temporary folder and deleted after (never installed, so nothing else uses it); its row says it failed."""
    import tempfile

    from siliconlab.errors import SiliconlabError
    from siliconlab.tasks.loader import load

    try:
        return _measure(load(model, unit=unit, cache=cache, threads=threads), unit, data) | {"gate": "passed"}
    except UsageError:
        raise
    except SiliconlabError as exc:
        if "parity failed" not in str(exc):
            raise
        reason = str(exc)
    with tempfile.TemporaryDirectory(prefix="siliconlab-eval-") as work:
        pipeline = failing_pipeline(model, unit, Path(work), cache, threads)
        return _measure(pipeline, unit, data) | {"gate": "failed", "gate_detail": reason}


def failing_pipeline(model: str, unit: str, work: Path, cache: Path | None, threads: int | None) -> Any:
    """A pipeline on an artifact built into `work` without installing it (Converter.build_uninstalled)."""
    from transformers import AutoTokenizer

    from siliconlab.bench.machine import default_threads
    from siliconlab.convert.pipeline import Converter
    from siliconlab.models import resolve
    from siliconlab.models.base import head_for_outputs, head_spec, max_length_of
    from siliconlab.paths import default_cache
    from siliconlab.tasks.pipeline import Loaded
    from siliconlab.tasks.registry import task_claiming, task_for_head
    from siliconlab.units import get_unit

    source, chosen, threads = resolve(model), get_unit(unit), threads or default_threads()
    Converter(source, cache or default_cache(), threads).build_uninstalled(chosen, work)
    runner = chosen.load(work, threads)
    tokenizer = AutoTokenizer.from_pretrained(work, trust_remote_code=False)
    truncation = (head_spec(source.config) or {}).get("truncation", "head")
    head = head_for_outputs(runner.output_names)
    task = task_claiming(model) or task_for_head(head.name)
    loaded = Loaded(source.name, head.name, unit, runner, tokenizer, max_length_of(source.config, tokenizer),
                    None, task.labels(source.config), "eval only: failed its parity gate", truncation)  # fmt: skip
    return task.pipeline(loaded)


def _measure(pipeline: Any, unit: str, data: EvalData) -> dict[str, Any]:
    from siliconlab.tasks.registry import task_of

    task = task_of(pipeline)
    labels = task.answer_labels(pipeline)
    unknown = sorted(set(data.labels) - set(labels))
    if unknown:
        raise UsageError(
            f"the data has label(s) {', '.join(unknown[:5])} the model does not know ({', '.join(labels)})"
        )
    quiet = logging.getLogger("siliconlab")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # one truncation notice per long review would bury the table; counted below
    try:
        task.predict(pipeline, data.texts[:8])  # warm-up: first-call allocations are not the unit's speed
        begin = time.perf_counter()
        predicted = task.predict(pipeline, data.texts)
        seconds = time.perf_counter() - begin
    finally:
        quiet.setLevel(level)
    result = metrics(data.labels, predicted, labels)
    truncated = sum(pipeline.prepare(data.texts).truncated)
    return {"unit": unit, **result, "ms_per_text": seconds * 1e3 / len(data.texts), "texts": len(data.texts),
            "truncated": truncated, "max_tokens": pipeline.loaded.max_length}  # fmt: skip


def evaluate(
    model: str, units: list[str], data: EvalData, cache: Path | None = None, threads: int | None = None, on_row=None
) -> dict[str, Any]:
    """Rows per unit (reference first), with accuracy deltas and flags; failures are reported, not raised."""
    from siliconlab.bench.machine import machine_info
    from siliconlab.version import __version__

    ordered = [REFERENCE_UNIT] + [u for u in units if u != REFERENCE_UNIT]
    rows, failures = [], []
    for unit in ordered:
        try:
            row = evaluate_unit(model, unit, data, cache, threads)
        except UsageError:
            raise
        except Exception as exc:  # one unit failing must not lose the others' results
            failures.append({"unit": unit, "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__})
            continue
        rows.append(row)
        if on_row:
            on_row(row)
    reference = next((r for r in rows if r["unit"] == REFERENCE_UNIT), None)
    for row in rows:
        delta = (row["accuracy"] - reference["accuracy"]) * 100 if reference else None
        row["accuracy_delta_points"] = delta
        row["flagged"] = (delta is not None and delta < -FLAG_POINTS) or row.get("gate") == "failed"
    return {
        "schema": "siliconlab.eval/1",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "siliconlab_version": __version__,
        "model": model,
        "data": data.description,
        "machine": machine_info(),
        "reference_unit": REFERENCE_UNIT,
        "flag_points": FLAG_POINTS,
        "results": rows,
        "failures": failures,
    }


def latest_accuracy(model: str, cache: Path | None = None) -> dict[str, Any] | None:
    """The latest `siliconlab eval MODEL` on this machine: {accuracy, unit, texts, created}, else None.

    `siliconlab models` shows only this — a figure measured here — never a committed one.
    """
    from siliconlab.bench.machine import machine_info
    from siliconlab.paths import default_cache
    from siliconlab.tasks.best import machine_fingerprint

    path = (cache or default_cache()) / model / EVAL_RECORD
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if machine_fingerprint(record.get("machine", {})) != machine_fingerprint(machine_info()):
        return None
    rows = [r for r in record.get("results", []) if r.get("unit") == record.get("reference_unit")]
    rows = rows or record.get("results", [])
    if not rows:
        return None
    return {"accuracy": rows[0]["accuracy"], "unit": rows[0]["unit"], "texts": rows[0].get("texts"),
            "created": record.get("created")}  # fmt: skip
