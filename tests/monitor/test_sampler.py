"""The Sampler: start/stop, its interval, bounded storage, its own cost, and sensors that are missing or fail."""

from __future__ import annotations

import statistics
import threading
import time

import pytest

from siliconlab.monitor.sampler import Sampler, Source


class Counter(Source):
    """Counts its reads; `value_j` makes it a cumulative counter so the summary's total can be checked."""

    def __init__(self, name: str = "counter", step: float = 1.0):
        self.name, self.step, self.reads, self.opened, self.closed = name, step, 0, 0, 0

    def available(self) -> tuple[bool, str]:
        return True, ""

    def open(self) -> None:
        self.opened += 1

    def close(self) -> None:
        self.closed += 1

    def read(self) -> dict[str, float]:
        self.reads += 1
        return {"reads": float(self.reads), "value_j": self.reads * self.step}


class Missing(Source):
    name = "missing"

    def available(self) -> tuple[bool, str]:
        return False, "no such sensor on this machine"

    def read(self) -> dict[str, float]:
        raise AssertionError("an unavailable source must never be read")


class Broken(Source):
    name = "broken"

    def __init__(self, fail_first: int):
        self.fail_first, self.calls = fail_first, 0

    def available(self) -> tuple[bool, str]:
        return True, ""

    def read(self) -> dict[str, float]:
        self.calls += 1
        if self.calls <= self.fail_first:
            raise OSError(f"sensor hiccup {self.calls}")
        return {"ok": 1.0}


def test_start_stop_and_context_manager_open_poll_and_close():
    source = Counter()
    sampler = Sampler([source], interval=0.02).start()
    time.sleep(0.1)
    sampler.stop()
    sampler.stop()  # idempotent
    assert source.opened == 1 and source.closed == 1
    reads = source.reads
    time.sleep(0.05)
    assert source.reads == reads, "the thread must be gone after stop()"
    assert not any(t.name == "siliconlab-sampler" for t in threading.enumerate())
    with Sampler([Counter()], interval=1.0) as quick:
        pass
    assert quick.summary()["samples"] == 2  # one at start, one at stop: a block shorter than the interval


def test_interval_is_roughly_respected_and_cost_is_recorded():
    with Sampler([Counter()], interval=0.05) as sampler:
        time.sleep(0.5)
    summary = sampler.summary()
    # 1 at start + ~10 in the loop + 1 at stop; loose bounds for a loaded 2-core machine
    assert 6 <= summary["samples"] <= 13, summary["samples"]
    gaps = [b.t - a.t for a, b in zip(sampler.samples, list(sampler.samples)[1:-1])]
    assert 0.04 <= statistics.median(gaps) <= 0.1
    assert 0 < summary["cost_ms"]["mean"] <= summary["cost_ms"]["max"] < 50
    assert all(sample.cost_s > 0 for sample in sampler.samples)
    assert 0 <= summary["cpu_ms"]["mean"] <= summary["cpu_ms"]["max"] < 50
    assert summary["seconds"] == pytest.approx(0.5, abs=0.2)


def test_storage_is_bounded_but_the_summary_covers_the_whole_run():
    source = Counter(step=2.0)
    with Sampler([source], interval=0.005, capacity=5) as sampler:
        time.sleep(0.2)
    summary = sampler.summary()
    assert len(sampler.samples) == summary["kept"] == 5
    assert summary["samples"] == source.reads > 5
    reads = summary["readings"]["counter.reads"]
    assert reads["min"] == 1 and reads["max"] == reads["last"] == source.reads
    assert reads["mean"] == pytest.approx((source.reads + 1) / 2)
    assert summary["readings"]["counter.value_j"]["total"] == pytest.approx(2.0 * (source.reads - 1))
    assert "total" not in reads  # only cumulative `_j` counters get a total


def test_missing_and_failing_sources_never_stop_the_sampler():
    flaky, dead, good = Broken(fail_first=2), Broken(fail_first=10**9), Counter()
    dead.name = "dead"
    with Sampler([Missing(), flaky, dead, good], interval=0.01, max_failures=3) as sampler:
        time.sleep(0.15)
    summary = sampler.summary()
    assert summary["unavailable"]["missing"] == "no such sensor on this machine"
    assert summary["unavailable"]["dead"] == "read failed 3 times in a row: OSError: sensor hiccup 3"
    assert dead.calls == 3, "a source that keeps failing is set aside, not polled forever"
    assert "broken" not in summary["unavailable"]  # two failures then fine: kept
    assert summary["errors"]["broken"] == "OSError: sensor hiccup 2"
    assert summary["readings"]["broken.ok"]["last"] == 1.0
    assert summary["readings"]["counter.reads"]["last"] == good.reads > 5


def test_a_source_whose_available_raises_is_reported_not_raised():
    class Exploding(Missing):
        name = "exploding"

        def available(self) -> tuple[bool, str]:
            raise RuntimeError("driver fell over")

    with Sampler([Exploding(), Counter()], interval=1.0) as sampler:
        pass
    assert sampler.summary()["unavailable"] == {"exploding": "RuntimeError: driver fell over"}


def test_a_source_set_aside_is_still_closed():
    class Closing(Broken):
        closed = False

        def close(self) -> None:
            self.closed = True

    dead = Closing(fail_first=10**9)
    with Sampler([dead], interval=0.005) as sampler:
        time.sleep(0.05)
    assert "broken" in sampler.summary()["unavailable"] and dead.closed


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="interval > 0"):
        Sampler([], interval=0)
    with pytest.raises(ValueError, match="distinct names"):
        Sampler([Counter(), Counter()])
