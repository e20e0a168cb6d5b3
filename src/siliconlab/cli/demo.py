"""`siliconlab demo`: the task models answering live, every unit side by side (terminal, or --web)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from siliconlab.cli.common import cache_dir, console, err, handles_errors, stages
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
    cache: Annotated[
        Path | None,
        typer.Option(
            "--cache",
            "--artifacts",
            help="The artifact store.",
            show_default="$SILICONLAB_CACHE or ~/.cache/siliconlab/artifacts",
        ),
    ] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads per unit (default: physical cores).")] = None,
    chat_model: Annotated[
        str,
        typer.Option("--chat-model", help="The chat scenario: chat-retrieval (every unit) or smollm2-chat (streamed)."),
    ] = "chat-retrieval",
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="smollm2-chat: longest reply.")] = 64,
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
    if chat_model not in ("chat-retrieval", "smollm2-chat"):
        raise UsageError(f"--chat-model must be chat-retrieval or smollm2-chat, got '{chat_model}'")
    if not 1 <= max_new_tokens <= 2048:
        raise UsageError(f"--max-new-tokens must be between 1 and 2048, got {max_new_tokens}")
    names, skipped = demo_units(_unit_names(unit, units))
    if not as_json:
        for name, why in skipped.items():
            if unit or units:
                err.print(f"  [yellow]skipping {name}:[/] {why}", highlight=False)
        err.print(f"demo on {len(names)} unit(s): {', '.join(names)}", highlight=False)
    session = DemoSession(names, cache=cache_dir(cache), threads=threads)
    from siliconlab.demo.generative import GenerativeMode

    generative = GenerativeMode(session, max_new_tokens=max_new_tokens)
    if web:  # the chat tab offers both modes; --chat-model picks the one selected at first
        from siliconlab.demo.web import serve

        serve(session, keys, skipped, host=host, port=port, share=share, results=results, err=err,
              generative=generative, chat_mode=chat_model)  # fmt: skip
        return
    chosen_mode = generative if chat_model == "smollm2-chat" else None
    from siliconlab.demo.terminal import interactive, run_texts

    if text:
        with stages():  # a unit's first run converts it when its turn comes: its stages show as they run
            code = run_texts(session, keys, text, console, err, as_json, chosen_mode)
        if code:
            raise typer.Exit(code)
        return
    with stages():
        interactive(session, keys, console, err, chosen_mode)
