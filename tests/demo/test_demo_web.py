"""The web front's handler without a browser: inputs a browser cannot send still get a friendly line."""

from __future__ import annotations

import pytest

from siliconlab.demo.session import DemoSession
from siliconlab.demo.web import respond


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "must be a string"),
        (b"\xff\xfe\x00junk", "not valid UTF-8 (byte 0xff"),
        ("\udcff\udcfe", "not valid UTF-8"),
        ("q" * 100_000, "characters long"),
    ],
    ids=["none", "invalid-utf8-bytes", "lone-surrogates", "100kB"],
)
def test_respond_turns_bad_input_into_one_friendly_line(demo_session: DemoSession, value, expected: str):
    (answer, scores, chart, table, summary, status) = list(respond(demo_session, "spam", value))[-1]
    assert answer.startswith("⚠️") and expected in answer and "\n" not in answer
    assert scores is None and table == [] and chart.empty
    assert status.startswith("done") and status.endswith("not answered")


def test_respond_streams_the_default_unit_first_then_the_rest(demo_session: DemoSession, spam_message: str):
    steps = list(respond(demo_session, "spam", spam_message))
    first_table = steps[0][3]
    assert first_table[0][1] is not None and first_table[1][1] is None  # the second unit had not answered yet
    answer, scores, chart, table, summary, status = steps[-1]
    assert answer.startswith("**spam**") and scores["spam"] > 0.5
    assert list(chart["unit"]) == list(demo_session.engines["spam"]) and all(chart["ms"] > 0)
    assert [row[3] for row in table] == ["yes", "yes"] and status.endswith("2/2 units")


def test_the_generative_chart_plots_the_whole_reply_as_the_table_does():
    """The chart names both times; its "whole reply" bar is the table's ms (it plotted TTFT alone before)."""
    from types import SimpleNamespace

    from siliconlab.demo.web import respond_generative

    stats = {"ms": 724.0, "ttft_ms": 253.0, "tokens": 12, "tokens_per_s": 25.0, "prompt_tokens": 9,
             "truncated_tokens": 0, "stopped": "eos"}  # fmt: skip
    steps = [SimpleNamespace(unit="torch-cpu-fp32", text="Par", done=False, stats=None),
             SimpleNamespace(unit="torch-cpu-fp32", text="Paris.", done=True, stats=stats)]  # fmt: skip
    mode = SimpleNamespace(model="smollm2-chat", stream=lambda text: iter(steps))
    session = DemoSession(["torch-cpu-fp32"])  # nothing loaded: the generative mode answers on its own
    answer, _, chart, table, _, status = list(respond_generative(mode, session, "capital of France?"))[-1]
    assert dict(zip(chart["unit"], chart["ms"])) == {"torch-cpu-fp32: first token": 253.0,
                                                     "torch-cpu-fp32: whole reply": 724.0}  # fmt: skip
    assert table[0][1] == 724.0 and "Paris." in answer and status.startswith("done")
