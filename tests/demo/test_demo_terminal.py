"""The terminal front and the session: answers, per-unit latency, fp32 agreement, summary, bad input."""

from __future__ import annotations

import json

import pytest
from rich.console import Console
from typer.testing import CliRunner

from siliconlab.cli import app
from siliconlab.demo.scenarios import SEARCH_SIZE, examples, search_sentences
from siliconlab.demo.session import MAX_CHARS, DemoSession, check_input
from siliconlab.demo.terminal import run_texts
from siliconlab.errors import UsageError

TEST_UNITS = ["onnxruntime-cpu-fp32", "torch-cpu-fp32"]  # as tests/demo/conftest.py loads them

runner = CliRunner()


def _consoles() -> tuple[Console, Console]:
    return Console(record=True, width=120), Console(record=True, width=120, stderr=True)


def test_examples_and_search_set_come_from_the_real_data():
    from siliconlab.data.tasks import labelled

    reviews = set(labelled("sentiment")["text"])
    assert all(text in reviews for text in examples("sentiment"))
    assert set(examples("spam")) <= set(labelled("spam")["text"])
    sentences = search_sentences()
    assert len(sentences) == SEARCH_SIZE and len(set(sentences)) == SEARCH_SIZE


def test_units_answer_in_order_with_agreement_and_summary(demo_session: DemoSession, positive_review, spam_message):
    rounds = [demo_session.answer("sentiment", positive_review), demo_session.answer("spam", spam_message)]
    assert rounds[0].first.answer.key == "positive"
    assert rounds[1].first.answer.key == "spam"
    for current in rounds:
        order = demo_session.order(current.scenario)  # sentiment and spam: scenario = model name
        assert [r.unit for r in current.results] == order  # the model's default unit answers first
        assert all(r.ms is not None and r.ms > 0 and r.error is None for r in current.results)
        assert all(r.agrees is True for r in current.results)  # fp32 onnx and torch give the same label
    rows = {(r["scenario"], r["unit"]): r for r in demo_session.summary()}
    assert rows[("spam", "torch-cpu-fp32")]["speedup_vs_fp32"] is None  # one answer is no speedup
    assert rows[("sentiment", "onnxruntime-cpu-fp32")]["median_ms"] > 0
    for _ in range(3):
        demo_session.answer("sentiment", positive_review)
    rows = {(r["scenario"], r["unit"]): r for r in demo_session.summary()}
    assert rows[("sentiment", "torch-cpu-fp32")]["speedup_vs_fp32"] == pytest.approx(1.0)
    assert rows[("sentiment", "onnxruntime-cpu-fp32")]["speedup_vs_fp32"] > 0


def test_text_mode_prints_every_scenario_with_a_latency_table(demo_session: DemoSession):
    console, err = _consoles()
    code = run_texts(demo_session, ["sentiment", "spam", "chat", "search"], ["I loved this movie"], console, err, False)
    out = console.export_text()
    assert code == 0
    for title in ("Sentiment", "E-mail / spam", "Chat", "Semantic search", "nearest example sentences"):
        assert title in out
    for unit in TEST_UNITS:
        assert out.count(unit) >= 4  # a row in each scenario's table


def test_text_mode_answers_good_texts_and_names_bad_ones(demo_session: DemoSession):
    console, err = _consoles()
    junk = "\udcff\udcfe binary"  # invalid UTF-8 from a command line arrives as lone surrogates
    texts = ["", "   ", "x" * 100_000, junk, "😀🎉 great!", "I loved this movie"]
    code = run_texts(demo_session, ["sentiment"], texts, console, err, True)
    errors = err.export_text()
    assert code == 1
    assert "text 1: the text is empty" in errors and "text 2: the text is empty" in errors
    assert f"up to {MAX_CHARS:,}" in errors and "not valid UTF-8 (byte 0xff" in errors
    assert "Traceback" not in errors + console.export_text()


def test_check_input_is_one_clear_line():
    for bad in ("", " \n\t", "a" * 100_000, b"\xff\xfe\x00", "\udc80"):
        with pytest.raises(UsageError) as info:
            check_input(bad)
        assert "\n" not in str(info.value)
    assert check_input("🙂") == "🙂"


def test_cli_json_answers_one_scenario_on_one_unit(positive_review: str):
    result = runner.invoke(app, ["demo", "--text", positive_review, "--json", "-s", "sentiment",
                                 "--unit", "onnxruntime-cpu-fp32", "--threads", "1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout.strip().splitlines()[-1])
    (current,) = document["rounds"]
    assert current["scenario"] == "sentiment" and current["results"][0]["answer"].startswith("positive")
    assert current["results"][0]["agrees_fp32"] is None  # no fp32 unit in this run: nothing to compare with


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--text", ""], "the text is empty"),
        (["--text", "   "], "the text is empty"),
        (["--text", "y" * 100_000], "characters long"),
        (["--text", "a", "--scenario", "poetry"], "unknown scenario 'poetry'"),
        (["--text", "a", "--unit", "nope"], "unknown unit 'nope'"),
        (["--json"], "--json needs --text"),
    ],
)
def test_cli_bad_input_is_one_line_before_any_loading(args: list[str], message: str):
    result = runner.invoke(app, ["demo", *args])
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output


def test_the_summary_states_a_speedup_only_from_medians_of_several_answers():
    """A ratio of two single samples is noise (issue 25 saw "23.91x"): below MIN_SPEEDUP_SAMPLES answers, none."""
    from siliconlab.demo.session import MIN_SPEEDUP_SAMPLES

    session = DemoSession(["torch-cpu-fp32", "onnxruntime-cpu-int8"])
    session.engines["sentiment"] = {"torch-cpu-fp32": None, "onnxruntime-cpu-int8": None}
    session.latencies[("sentiment", "torch-cpu-fp32")] = [100.0]
    session.latencies[("sentiment", "onnxruntime-cpu-int8")] = [4.0]
    assert all(row["speedup_vs_fp32"] is None for row in session.summary())
    session.latencies[("sentiment", "torch-cpu-fp32")] = [100.0, 90.0, 400.0][:MIN_SPEEDUP_SAMPLES]
    session.latencies[("sentiment", "onnxruntime-cpu-int8")] = [4.0, 50.0, 5.0][:MIN_SPEEDUP_SAMPLES]
    rows = {row["unit"]: row for row in session.summary()}
    assert rows["onnxruntime-cpu-int8"]["speedup_vs_fp32"] == pytest.approx(100.0 / 5.0)  # median over median
