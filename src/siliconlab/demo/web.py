"""The web front (Gradio Blocks): one tab per scenario, a benchmark tab and a machine tab.

Units are loaded once (before the page opens) and shared by every visitor; requests go through Gradio's
queue and the session lock, so units answer one after another while the page stays responsive. Bad input
is answered with a friendly line on the page, never a traceback.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from siliconlab.demo import benchtab
from siliconlab.demo.scenarios import SCENARIOS, examples
from siliconlab.demo.session import MAX_CHARS, DemoSession, Round
from siliconlab.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console

log = logging.getLogger("siliconlab")

TABLE_HEADERS = ["unit", "ms", "answer", "agrees with fp32"]
SUMMARY_HEADERS = ["unit", "answers", "median ms", "speedup vs fp32"]
BENCH_HEADERS = ["unit", "workload", "p50 ms", "p90 ms", "speedup", "contention"]
INTRO = (
    "# siliconlab demo\nType a text: every compute unit of this machine answers it in turn (the default unit "
    "first), with its latency and whether its answer agrees with fp32 PyTorch's. Units never run at the same "
    "time, so their latencies are their own."
)


def _frame(rows: list[dict[str, Any]]) -> Any:
    import pandas as pd

    return pd.DataFrame(rows, columns=["unit", "ms"]).astype({"unit": str, "ms": float})  # ms: a quantity axis


def _with_room(gr: Any, frame: Any) -> Any:
    """The chart's data with a y range from 0 to 15 % above its tallest bar: with y_lim [0, None] the axis
    stopped at a round number below the tallest bar and cut it (issue 25)."""
    top = float(frame["ms"].max()) if len(frame) else 0.0
    return gr.BarPlot(value=frame, y_lim=[0, top * 1.15 if top > 0 else 1.0])


def _outputs(current: Round | None, session: DemoSession, key: str, message: str = "") -> tuple[Any, ...]:
    """answer markdown, scores, latency chart, per-unit table, session summary of this scenario."""
    if current is None:
        return message, None, _frame([]), [], _summary_rows(session, key)
    first = current.first
    if first is None or first.answer is None:
        errors = "; ".join(f"{r.unit}: {r.error}" for r in current.results if r.error)
        answer = f"**No unit answered yet.** {errors}"
        scores = None
    else:
        answer = _answer_markdown(key, first.unit, first.answer)
        scores = None if key == "chat" else first.answer.scores
    chart = _frame([{"unit": r.unit, "ms": round(r.ms, 2)} for r in current.results if r.ms is not None])
    table = [[r.unit, None if r.ms is None else round(r.ms, 2),
              f"failed: {r.error}" if r.error else (r.answer.short if r.answer else "…"),
              {True: "yes", False: "no", None: "—"}[r.agrees]] for r in current.results]  # fmt: skip
    return answer, scores, chart, table, _summary_rows(session, key)


def _answer_markdown(key: str, unit: str, answer: Any) -> str:
    if key == "search":
        lines = [f"{i}. {item['sentence']} — cosine {item['cosine']:.2f}"
                 for i, item in enumerate(answer.detail["neighbours"], 1)]  # fmt: skip
        return f"**Nearest example sentences** ({unit}):\n\n" + "\n".join(lines)
    if key == "chat":
        detail = answer.detail
        return (f"**Reply** ({unit}): {detail['reply']}\n\n_matched “{detail['matched']}” "
                f"(cosine {detail['score']:.2f}, {detail['category']})_")  # fmt: skip
    return f"**{answer.key}** ({unit}, score {answer.detail['score']:.2f})"


def _summary_rows(session: DemoSession, key: str) -> list[list[Any]]:
    rows = [r for r in session.summary() if r["scenario"] == key]
    return [[r["unit"], r["answers"], round(r["median_ms"], 2),
             None if r["speedup_vs_fp32"] is None else round(r["speedup_vs_fp32"], 2)] for r in rows]  # fmt: skip


_requests = itertools.count(1)


def respond(session: DemoSession, key: str, text: Any) -> Iterator[tuple[Any, ...]]:
    """Stream a round to the page: the first unit's answer at once, the others as they come; the last
    output says how the request ended (numbered, so a page or a test can tell one request from the next)."""
    number = next(_requests)
    try:
        for current in session.stream(key, text):
            answered = sum(r.ms is not None for r in current.results)
            state = "done" if current.done else "answering"
            yield (
                *_outputs(current, session, key),
                f"{state} · request {number} · {answered}/{len(current.results)} units",
            )
    except UsageError as exc:
        yield *_outputs(None, session, key, f"⚠️ {exc}"), f"done · request {number} · not answered"
    except Exception as exc:  # the page gets one line; the log keeps the details
        log.exception("demo request failed")
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        yield *_outputs(None, session, key, f"⚠️ Something went wrong: {first}"), f"done · request {number} · failed"


def respond_generative(mode: Any, session: DemoSession, text: Any) -> Iterator[tuple[Any, ...]]:
    """The chat tab's generative mode: the reply grows on the page as it is written; the status line and the
    table give the unit, time to first token and tokens/s once it is done."""
    from siliconlab.demo.generative import stats_line

    number = next(_requests)
    summary = _summary_rows(session, "chat")
    try:
        for step in mode.stream(text):
            answer = f"**Reply** ({mode.model} on {step.unit}): {step.text}" + ("" if step.done else " ▍")
            if not step.done:
                yield answer, None, _frame([]), [], summary, f"writing · request {number} · {mode.model}"
                continue
            stats = step.stats
            row = [step.unit, round(stats["ms"], 2), f"TTFT {stats['ttft_ms']:.0f} ms · {stats['tokens']} tokens", "—"]
            # Both times, named: the table's ms is the whole reply; plotting only TTFT under "latency" read as 3x
            # faster than the table said (253 vs 724 ms in issue 25).
            chart = _frame([{"unit": f"{step.unit}: first token", "ms": round(stats["ttft_ms"], 2)},
                            {"unit": f"{step.unit}: whole reply", "ms": round(stats["ms"], 2)}])  # fmt: skip
            yield answer, None, chart, [row], summary, f"done · request {number} · {stats_line(stats)}"
    except UsageError as exc:
        yield f"⚠️ {exc}", None, _frame([]), [], summary, f"done · request {number} · not answered"
    except Exception as exc:  # the page gets one line; the log keeps the details
        log.exception("demo generative request failed")
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        yield f"⚠️ Something went wrong: {first}", None, _frame([]), [], summary, f"done · request {number} · failed"


def _scenario_tab(gr: Any, session: DemoSession, key: str, generative: Any = None,
                  chat_mode: str = "chat-retrieval") -> None:  # fmt: skip
    scenario = SCENARIOS[key]
    failures = session.failures.get(key, {})
    with gr.Tab(scenario.title, id=key, elem_id=f"{key}-tab"):
        units = ", ".join(session.engines.get(key, {})) or "loading on first use"
        skipped = "".join(f"\n- {unit}: {why}" for unit, why in failures.items())
        gr.Markdown(f"Type {scenario.prompt} (up to {MAX_CHARS:,} characters). Units: {units}. "
                    f"Agreement with fp32 compares {scenario.agreement}." + (f"\n\nNot loaded:{skipped}" if skipped
                    else ""))  # fmt: skip
        mode = None
        if key == "chat" and generative is not None:
            mode = gr.Radio(["chat-retrieval", generative.model], value=chat_mode, label="chat model",
                            info=f"chat-retrieval: every unit, side by side; {generative.model}: writes its reply "
                            "token by token on one unit (loads on first use), with time to first token and tokens/s",
                            elem_id="chat-mode")  # fmt: skip
        with gr.Row():
            text = gr.Textbox(label=scenario.prompt, lines=3, elem_id=f"{key}-input", scale=4)
            button = gr.Button("Answer", variant="primary", elem_id=f"{key}-submit", scale=1)
        gr.Examples([[e] for e in examples(key)], inputs=text, label="examples from the real data")
        answer = gr.Markdown(elem_id=f"{key}-answer")
        status = gr.Markdown(elem_id=f"{key}-status")
        with gr.Row():
            scores = gr.Label(label="scores", num_top_classes=3, elem_id=f"{key}-scores", visible=key != "chat")
            # Labels at -45° (at -20 they were cut to "…u-fp32"); the y range is set per answer (_with_room).
            chart = gr.BarPlot(_frame([]), x="unit", y="ms", title="latency per unit (ms)", y_title="ms",
                               y_lim=[0, None], x_label_angle=-45, height=420, elem_id=f"{key}-chart")  # fmt: skip
        table = gr.Dataframe(headers=TABLE_HEADERS, label="this request", elem_id=f"{key}-table", wrap=True)
        summary = gr.Dataframe(headers=SUMMARY_HEADERS, label="session: median per unit", elem_id=f"{key}-summary")
        outputs = [answer, scores, chart, table, summary, status]

        def handler(value: Any, chosen: str = "chat-retrieval") -> Iterator[tuple[Any, ...]]:
            if generative is not None and chosen == generative.model:
                steps = respond_generative(generative, session, value)
            else:
                steps = respond(session, key, value)
            for step in steps:
                yield (*step[:2], _with_room(gr, step[2]), *step[3:])

        inputs = [text] if mode is None else [text, mode]
        button.click(handler, inputs=inputs, outputs=outputs, concurrency_limit=1)
        text.submit(handler, inputs=inputs, outputs=outputs, concurrency_limit=1)


def _bench_tab(gr: Any, session: DemoSession, results: Path) -> None:
    def current() -> tuple[str, list[list[Any]], list[str]]:
        found = benchtab.latest_result(results)
        rows = benchtab.result_rows(found[0]) if found else []
        return benchtab.describe(found, results), rows, benchtab.charts(found[1]) if found else []

    def run(progress: Any = gr.Progress()) -> tuple[str, list[list[Any]], list[str], str]:  # noqa: B008 (Gradio's way)
        def on_progress(done: int, total: int, line: str) -> None:
            progress((done, total), desc=line)

        with session.lock:  # the demo's units wait: the bench measures a quiet machine
            code, tail = benchtab.run_quick_bench(session.units, results, on_progress)
        status = "quick bench finished" if code == 0 else f"quick bench failed (exit {code}):\n\n```\n{tail}\n```"
        return *current(), status

    with gr.Tab("Benchmark", id="benchmark", elem_id="benchmark-tab"):
        info, rows, images = current()
        header = gr.Markdown(info, elem_id="bench-info")
        table = gr.Dataframe(value=rows, headers=BENCH_HEADERS, label="latest result", elem_id="bench-table")
        gallery = gr.Gallery(
            value=images, label="charts", columns=2, height=480, object_fit="contain", elem_id="bench-charts"
        )
        gr.Markdown(f"The quick bench times MiniLM on the demo's units ({', '.join(session.units)}) on "
                    f"{benchtab.QUICK_TEXTS} real sentences; the demo's units pause while it runs.")  # fmt: skip
        button = gr.Button("Run a quick bench", elem_id="bench-run")
        status = gr.Markdown(elem_id="bench-status")
        button.click(run, outputs=[header, table, gallery, status], concurrency_limit=1)


def _machine_tab(gr: Any, session: DemoSession, skipped: dict[str, str]) -> None:
    from siliconlab.bench.machine import machine_info
    from siliconlab.units import REGISTRY

    info = machine_info()
    rows = []
    for unit in REGISTRY.values():
        d = unit().describe()
        rows.append([d["unit"], d["device"], d["precision"], "yes" if d["available"] else "no",
                     "yes" if d["unit"] in session.units else "no", d["reason"] or d["timing_reason"]])  # fmt: skip
    with gr.Tab("Machine", id="machine", elem_id="machine-tab"):
        gpus = ", ".join(g.get("name", "?") for g in info.get("gpus") or []) or "none"
        gr.Markdown(f"**CPU** {info['cpu']} — {info['cores_physical']} physical / {info['cores_logical']} logical "
                    f"cores, {info['ram_gb']} GB RAM, {info['os']}; **GPUs** {gpus}")  # fmt: skip
        gr.Dataframe(value=rows, headers=["unit", "device", "precision", "available", "in this demo", "why not"],
                     label="siliconlab units", wrap=True, elem_id="machine-units")  # fmt: skip


def build_app(session: DemoSession, keys: list[str], skipped: dict[str, str], results: Path, generative: Any = None,
              chat_mode: str = "chat-retrieval") -> Any:  # fmt: skip
    """The Blocks app; units already loaded by the caller answer at once. `generative`: the chat tab's
    generative mode (demo/generative.py), `chat_mode` the model selected at first."""
    import gradio as gr

    with gr.Blocks(title="siliconlab demo") as app:
        gr.Markdown(INTRO)
        with gr.Tabs():
            for key in keys:
                _scenario_tab(gr, session, key, generative, chat_mode)
            _bench_tab(gr, session, results)
            _machine_tab(gr, session, skipped)
    app.queue(default_concurrency_limit=1)
    return app


def launch(app: Any, host: str, port: int, share: bool, results: Path, block: bool) -> Any:
    """Start the server (127.0.0.1 and no share link unless asked); `block=False` returns at once."""
    results = Path(results)
    results.mkdir(parents=True, exist_ok=True)
    return app.launch(server_name=host, server_port=port or None, share=share, prevent_thread_lock=not block,
                      quiet=True, show_error=False, allowed_paths=[str(results.resolve())],
                      footer_links=[])  # fmt: skip


def serve(
    session: DemoSession,
    keys: list[str],
    skipped: dict[str, str],
    host: str,
    port: int,
    share: bool,
    results: Path,
    err: Console,
    generative: Any = None,
    chat_mode: str = "chat-retrieval",
) -> None:
    """Load every scenario's units, then serve the page until Ctrl-C; progress lines go to `err` (the CLI's)."""
    from siliconlab.demo.terminal import _loading

    for key in keys:
        session.prepare(key, _loading(err, key))
    app = build_app(session, keys, skipped, results, generative, chat_mode)
    launch(app, host, port, share, results, block=False)
    err.print(f"demo page on {app.local_url}" + (f" and {app.share_url}" if app.share_url else "")
              + " — Ctrl-C to stop", highlight=False)  # fmt: skip
    try:
        while app.is_running:  # Gradio's own block_thread prints a line of its own on Ctrl-C
            time.sleep(0.2)
    except KeyboardInterrupt:
        err.print("stopping the demo page")
    finally:
        app.close()
