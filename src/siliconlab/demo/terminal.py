"""The terminal front: answers with a per-unit latency table (live while units answer), a running summary,
and a prompt loop. Plain rich output, so it works in any terminal, over ssh, and in a pipe."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.prompt import Prompt
from rich.table import Table
from rich.text import Text

from siliconlab.demo.scenarios import SCENARIOS
from siliconlab.demo.session import MIN_SPEEDUP_SAMPLES, REFERENCE, DemoSession, Round, check_input
from siliconlab.errors import UsageError

BAR_WIDTH = 24


def _agrees(value: bool | None) -> Text:
    if value is None:
        return Text("—", style="dim")
    return Text("yes", style="green") if value else Text("no", style="red")


def round_table(current: Round) -> Table:
    """One row per unit: latency with a bar scaled to the slowest unit so far, the answer, fp32 agreement."""
    scenario = SCENARIOS[current.scenario]
    table = Table(title=f"{scenario.title}: per-unit latency", title_justify="left")
    for column in ("unit", "ms", "latency", "answer", "= fp32"):
        table.add_column(column, no_wrap=column != "answer", justify="right" if column == "ms" else "left")
    slowest = max((r.ms for r in current.results if r.ms is not None), default=0.0)
    for result in current.results:
        if result.error:
            table.add_row(result.unit, "", "", Text(f"failed: {result.error}", style="red"), "")
        elif result.ms is None:
            table.add_row(result.unit, "", Text("waiting…", style="dim"), "", "")
        else:
            filled = max(1, round(BAR_WIDTH * result.ms / slowest)) if slowest else 1
            bar = Text("█" * filled, style="cyan" if result.unit != REFERENCE else "magenta")
            answer = Text(result.answer.short if result.answer else "", overflow="fold")
            table.add_row(result.unit, f"{result.ms:.1f}", bar, answer, _agrees(result.agrees))
    return table


def answer_block(current: Round) -> Text:
    """The default (first) unit's full answer, shown above the table."""
    first = current.first
    if first is None or first.answer is None:
        return Text("no unit answered", style="red")
    head = Text(f"{SCENARIOS[current.scenario].title} ", style="bold")
    head.append(f"({first.unit}): ", style="dim")
    if current.scenario == "search":
        head.append("nearest example sentences\n")
        for index, item in enumerate(first.answer.detail["neighbours"], 1):
            head.append(f"  {index}. {item['sentence']}  (cosine {item['cosine']:.2f})\n")
        return head
    head.append(first.answer.summary)
    return head


def summary_table(session: DemoSession) -> Table | None:
    rows = session.summary()
    if not rows:
        return None
    table = Table(title="Session summary: median latency per unit", title_justify="left")
    for column in ("scenario", "unit", "answers", "median ms", "speedup vs fp32"):
        table.add_column(column, justify="left" if column in ("scenario", "unit") else "right")
    for row in rows:
        speedup = f"{row['speedup_vs_fp32']:.2f}x" if row["speedup_vs_fp32"] else f"— (< {MIN_SPEEDUP_SAMPLES} answers)"
        table.add_row(row["scenario"], row["unit"], str(row["answers"]), f"{row['median_ms']:.1f}", speedup)
    return table


def _loading(err: Console, key: str):
    def on_unit(unit: str, failure: str | None) -> None:
        if failure:
            err.print(f"  [yellow]{unit} skipped for {key}:[/] {failure}", highlight=False)
        else:
            err.print(f"  [dim]{key} ready on {unit}[/]", highlight=False)

    return on_unit


def show_round(session: DemoSession, key: str, text: str, console: Console) -> Round:
    """Answer with a live table (units fill in as they answer); prints the answer and the final table."""
    from rich.console import Group
    from rich.live import Live

    last: Round | None = None
    with Live(console=console, refresh_per_second=12, transient=True) as live:
        for last in session.stream(key, text):
            live.update(Group(answer_block(last), round_table(last)))
    assert last is not None
    console.print(answer_block(last))
    console.print(round_table(last))
    return last


def show_generation(mode: Any, text: str, console: Console | None) -> dict[str, Any]:
    """The generative chat mode: the reply printed as it is written, then TTFT and tokens/s (console None:
    only the record, for --json)."""
    from siliconlab.demo.generative import stats_line

    last, shown = None, 0
    for last in mode.stream(text):
        if console is None:
            continue
        if shown == 0 and not last.done:
            console.print(Text(f"Chat ({mode.model} on {last.unit}): ", style="bold"), end="")
        if not last.done:  # whitespace waits for the next word: a reply's trailing newline is not printed
            visible = last.text.rstrip()
            console.print(visible[shown:], end="", highlight=False, markup=False, soft_wrap=True)
            shown = len(visible)
    assert last is not None
    record = {"scenario": "chat", "mode": "generative", "model": mode.model, "text": text, "reply": last.text,
              **{k: v for k, v in last.stats.items() if k != "reply"}}  # fmt: skip
    if console is None:
        return record
    if shown == 0:
        console.print(Text(f"Chat ({mode.model} on {last.unit}): ", style="bold"), end="")
    console.print(last.text[shown:].rstrip(), highlight=False, markup=False, soft_wrap=True)
    console.print(Text(f"  {last.unit}, {stats_line(last.stats)}", style="dim"))
    return record


def run_texts(
    session: DemoSession,
    keys: list[str],
    texts: list[str],
    console: Console,
    err: Console,
    as_json: bool,
    generative: Any = None,
) -> int:
    """Answer each text in each scenario; a bad text is one line and the others still answer. Returns the
    exit code (1 when some text could not be answered). `generative`: the chat scenario's generative mode."""
    rounds: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    usable = []
    for index, text in enumerate(texts):  # bad texts are named before any unit loads; the good ones still run
        try:
            usable.append((index, check_input(text)))
        except UsageError as exc:
            errors.append({"text": index, "error": str(exc)})
    if not usable:
        listed = "; ".join(f"text {e['text'] + 1}: {e['error']}" for e in errors)
        raise UsageError(errors[0]["error"] if len(errors) == 1 else f"no text to answer: {listed}")
    for error in errors:
        err.print(f"[bold red]error:[/] text {error['text'] + 1}: {error['error']} (the others are answered)",
                  highlight=False)  # fmt: skip
    for key in keys:
        if not (key == "chat" and generative is not None):
            session.prepare(key, None if as_json else _loading(err, key))
    for _, text in usable:
        for key in keys:
            if key == "chat" and generative is not None:
                record = show_generation(generative, text, None if as_json else console)
                if as_json:
                    rounds.append(record)
            elif as_json:
                rounds.append(session.answer(key, text).as_dict())
            else:
                show_round(session, key, text, console)
    if as_json:
        document = {"units": session.units, "failures": session.failures, "rounds": rounds,
                    "summary": session.summary(), "errors": errors}  # fmt: skip
        print(json.dumps(document, ensure_ascii=False))
    else:
        table = summary_table(session)
        if table is not None and len(texts) > 1:
            console.print(table)
    return 1 if errors else 0


def interactive(session: DemoSession, keys: list[str], console: Console, err: Console, generative: Any = None) -> None:
    """Pick a scenario, type texts; an empty line goes back to the scenarios, Ctrl-C or Ctrl-D leaves."""
    try:
        while True:
            key = keys[0] if len(keys) == 1 else _pick(keys, console)
            if key is None:
                break
            generating = key == "chat" and generative is not None
            if generating:
                err.print(f"  [dim]chat mode: {generative.model}, streamed (loads on first use)[/]", highlight=False)
            else:
                session.prepare(key, _loading(err, key))
            console.print(f"[bold]{SCENARIOS[key].title}[/]: type {SCENARIOS[key].prompt} (empty line: back)")
            while True:
                text = Prompt.ask(f"[cyan]{key}[/]", console=console, default="", show_default=False)
                if not text.strip():
                    break
                try:
                    if generating:
                        show_generation(generative, text, console)
                    else:
                        show_round(session, key, text, console)
                except UsageError as exc:
                    err.print(f"[yellow]{exc}[/]", highlight=False)
            if len(keys) == 1:
                break
    except (KeyboardInterrupt, EOFError):  # Ctrl-C / Ctrl-D: leave cleanly, with the session's summary
        console.print()
    table = summary_table(session)
    if table is not None:
        console.print(table)


def _pick(keys: list[str], console: Console) -> str | None:
    for number, key in enumerate(keys, 1):
        console.print(f"  {number}. {SCENARIOS[key].title} [dim]({key})[/]")
    choices = [str(n) for n in range(1, len(keys) + 1)] + keys + ["q"]
    picked = Prompt.ask("scenario (number or name, q to leave)", console=console, choices=choices, show_choices=False)
    if picked == "q":
        return None
    return keys[int(picked) - 1] if picked.isdigit() else picked
