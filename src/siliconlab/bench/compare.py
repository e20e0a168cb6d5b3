"""compare: per unit and shape, how B differs from A, flagging only changes larger than the measured spread."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Change:
    unit: str
    shape: str
    before_ms: float
    after_ms: float
    ratio: float  # after / before: > 1 is slower
    beyond_spread: bool
    regression: bool


def _key(row: dict[str, Any]) -> tuple:
    if row.get("workload_label"):
        return (row["unit"], row["workload"], row["workload_label"])
    return (row["unit"], row["workload"], row["batch"], row["seq"], row.get("budget_ms"))


def _interval(row: dict[str, Any]) -> tuple[float, float]:
    lat = row["latency_ms"]
    return lat.get("p50_ci_low", lat["p50"]), lat.get("p50_ci_high", lat["p50"])


def _machine(result: dict[str, Any]) -> str:
    machine = result.get("machine", {})
    gpus = ", ".join(gpu.get("name", "?") for gpu in machine.get("gpus") or [])
    return f"{machine.get('cpu', '?')}{' + ' + gpus if gpus else ''}"


def incomparable(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Why two results should not be compared: a different model, machine or thread count makes a ratio
    between them meaningless ("faster" would be a different computer, not a better build)."""
    reasons = []
    if before.get("model") != after.get("model"):
        reasons.append(f"different models ({before.get('model')} vs {after.get('model')})")
    if _machine(before) != _machine(after):
        reasons.append(f"different machines ({_machine(before)} vs {_machine(after)})")
    threads = (before.get("settings", {}).get("threads"), after.get("settings", {}).get("threads"))
    if threads[0] != threads[1]:
        reasons.append(f"different thread counts ({threads[0]} vs {threads[1]})")
    return reasons


def compare_results(before: dict[str, Any], after: dict[str, Any], threshold: float) -> tuple[list[Change], list[str]]:
    """A change is beyond spread when the two medians' confidence intervals do not overlap; a regression is
    one beyond spread and slower by more than `threshold` (0.10 = 10%)."""
    old = {_key(r): r for r in before["results"]}
    changes, missing = [], []
    for key, row in ((_key(r), r) for r in after["results"]):
        if key not in old:
            continue
        a, b = old[key], row
        ratio = b["latency_ms"]["p50"] / a["latency_ms"]["p50"]
        (a_low, a_high), (b_low, b_high) = _interval(a), _interval(b)
        beyond = b_low > a_high or b_high < a_low
        changes.append(
            Change(
                unit=row["unit"],
                shape=row.get("workload_label") or f"B{row['batch']} S{row['seq']}",
                before_ms=a["latency_ms"]["p50"],
                after_ms=b["latency_ms"]["p50"],
                ratio=ratio,
                beyond_spread=beyond,
                regression=beyond and ratio > 1.0 + threshold,
            )
        )
    new_keys = {_key(r) for r in after["results"]}
    missing = [" ".join(str(part) for part in k if part is not None) for k in old if k not in new_keys]
    return changes, missing
