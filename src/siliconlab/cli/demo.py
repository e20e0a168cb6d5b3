"""`siliconlab demo`: the task models answering live, every unit side by side (terminal, or --web)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from siliconlab.cli.common import DEFAULT_CACHE, console, err, handles_errors
from siliconlab.errors import UsageError

SCENARIO_NAMES = ("sentiment", "spam", "chat", "search")


def _scenarios(given: list[str] | None) -> list[str]:
    aliases = {"email": "spam", "e-mail": "spam", "semantic-search": "search"}
    keys = [aliases.get(k.strip().lower(), k.strip().lower()) for k in given or []]
    for key in keys:
        if key not in SCENARIO_NAMES:
            raise UsageError(f"unknown scenario '{key}': choose from {', '.join(SCENARIO_NAMES)}")
    return list(dict.fromkeys(keys)) or list(SCENARIO_NAMES)


def _unit_names(unit: str | None, units: str | None) -> list[str] | None:
    if unit and units:
        raise UsageError("give --unit (one unit) or --units (a comma list), not both")
    if unit:
        return [unit.strip()]
    if units:
        names = [u.strip() for u in units.split(",") if u.strip()]
        if not names:
            raise UsageError("--units needs at least one unit name")
        return names
    return None


@handles_errors
def demo(
    scenario: Annotated[
        list[str] | None,
        typer.Option("--scenario", "-s", help="sentiment, spam (email), chat or search; repeatable (default: all)."),
    ] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="Pin one unit.")] = None,
    units: Annotated[
        str | None, typer.Option("--units", help="Comma-separated units (default: every one here).")
    ] = None,
    text: Annotated[
        list[str] | None, typer.Option("--text", "-t", help="Answer this text and exit (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="With --text: one JSON document on stdout.")] = False,
    web: Annotated[bool, typer.Option("--web", help="Serve the Gradio web page instead.")] = False,
    host: Annotated[str, typer.Option(help="--web: address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="--web: port (0: a free one).")] = 7860,
    share: Annotated[bool, typer.Option("--share", help="--web: also open a public Gradio share link.")] = False,
    results: Annotated[
        Path, typer.Option("--results", help="--web: where bench results are read and the quick bench writes.")
    ] = Path("results"),
    cache: Annotated[Path, typer.Option("--artifacts", "--cache", help="The artifact store.")] = DEFAULT_CACHE,
    threads: Annotated[int | None, typer.Option(help="CPU threads per unit (default: physical cores).")] = None,
) -> None:
    """Type a review, a message or a chat line; see the answer and how fast each compute unit gave it.

    Units answer one after another (never at once), the default unit first; each answer is checked against
    torch-cpu-fp32's. Interactive in a terminal; --text answers and exits; --web serves a page.
    """
    from siliconlab.demo.session import DemoSession, demo_units

    keys = _scenarios(scenario)
    if as_json and not text:
        raise UsageError("--json needs --text (the interactive demo has no JSON form)")
    if web and text:
        raise UsageError("--web serves a page; --text answers in the terminal: give one of them")
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be 0-65535, got {port}")
    if threads is not None and threads < 1:
        raise UsageError(f"--threads must be >= 1, got {threads}")
    names, skipped = demo_units(_unit_names(unit, units))
    if not as_json:
        for name, why in skipped.items():
            if unit or units:
                err.print(f"  [yellow]skipping {name}:[/] {why}", highlight=False)
        err.print(f"demo on {len(names)} unit(s): {', '.join(names)}", highlight=False)
    session = DemoSession(names, cache=cache, threads=threads)
    if web:
        from siliconlab.demo.web import serve

        serve(session, keys, skipped, host=host, port=port, share=share, results=results)
        return
    from siliconlab.demo.terminal import interactive, run_texts

    if text:
        code = run_texts(session, keys, text, console, err, as_json)
        if code:
            raise typer.Exit(code)
        return
    interactive(session, keys, console, err)
