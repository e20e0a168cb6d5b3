"""`siliconlab classify`, `embed`, `chat`: one-shot answers from the task pipelines, with unit and time."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from siliconlab.cli.common import CacheOption, cache_dir, console, err, handles_errors, stages
from siliconlab.errors import UsageError

UnitOption = Annotated[str, typer.Option("--unit", help="A unit name, or 'best' (fastest stable unit benched here).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def read_lines(path: Path) -> list[str]:
    """Non-blank lines of a UTF-8 text file ('-' for stdin), each a text."""
    try:
        raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"no such input file: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not a text file") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise UsageError(f"{path} has no non-blank line")
    return lines


def _texts(texts: list[str] | None, input_file: Path | None) -> list[str]:
    collected = list(texts or [])
    if input_file is not None:
        collected += read_lines(input_file)
    if not collected:
        raise UsageError("no text given: pass texts as arguments or --input FILE")
    return collected


def _short(text: str, width: int = 60) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@handles_errors
def classify(
    model: Annotated[str, typer.Argument(help="sentiment, spam, or a local classifier directory.")],
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to classify.", show_default=False)] = None,
    input_file: Annotated[Path | None, typer.Option("--input", help="A file with one text per line.")] = None,
    unit: UnitOption = "best",
    as_json: JsonOption = False,
    cache: CacheOption = None,
) -> None:
    """Classify texts with a task model: label, score and every class's probability, per text."""
    from siliconlab.tasks import load

    items = _texts(texts, input_file)
    with stages():
        pipeline = load(model, unit=unit, cache=cache_dir(cache))
    answers = pipeline.classify(items)
    if as_json:
        print(json.dumps({"model": model, "unit": pipeline.unit, "ms": pipeline.last_ms, "answers": answers}))
        return
    table = Table(title=f"{model} on {pipeline.unit} — {pipeline.last_ms:.1f} ms for {len(items)} text(s)")
    for column in ("text", "label", "score"):
        table.add_column(column, overflow="fold")
    for text, answer in zip(items, answers):
        if answer.get("error"):
            table.add_row(_short(repr(text)), "[red]error[/]", answer["error"])
        else:
            table.add_row(_short(text), answer["label"], f"{answer['score']:.3f}")
    console.print(table)
    if any(a.get("error") for a in answers):
        raise typer.Exit(1)


@handles_errors
def embed(
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to embed.", show_default=False)] = None,
    input_file: Annotated[Path | None, typer.Option("--input", help="A file with one text per line.")] = None,
    model: Annotated[str, typer.Option("--model", help="An embedding model.")] = "minilm",
    out: Annotated[Path | None, typer.Option("--out", help="Write the embeddings: .npy or .jsonl.")] = None,
    unit: UnitOption = "best",
    cache: CacheOption = None,
) -> None:
    """Sentence embeddings (L2-normalised) for texts or a file of lines; --out writes them."""
    import numpy as np

    from siliconlab.tasks import load

    items = _texts(texts, input_file)
    if out is not None and out.suffix not in (".npy", ".jsonl"):
        raise UsageError(f"--out must end in .npy or .jsonl, got '{out.name}'")
    with stages():
        pipeline = load(model, unit=unit, cache=cache_dir(cache))
    vectors = pipeline.encode(items)
    if out is not None:
        _write_embeddings(out, items, vectors)
    table = Table(title=f"{model} on {pipeline.unit} — {pipeline.last_ms:.1f} ms for {len(items)} text(s)")
    for column in ("text", "dims", "first values"):
        table.add_column(column, overflow="fold")
    for text, vector in zip(items[:20], vectors[:20]):
        first = "error: not embedded" if np.isnan(vector).any() else " ".join(f"{v:+.3f}" for v in vector[:4])
        table.add_row(_short(text), str(vector.shape[0]), first)
    console.print(table)
    if len(items) > 20:
        console.print(f"… and {len(items) - 20} more")
    if out is not None:
        console.print(f"embeddings: {out}", highlight=False)


def _write_embeddings(out: Path, texts: list[str], vectors: Any) -> None:
    import numpy as np

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    if out.suffix == ".npy":
        with tmp.open("wb") as handle:
            np.save(handle, vectors, allow_pickle=False)
    else:
        with tmp.open("w", encoding="utf-8") as handle:
            for text, vector in zip(texts, vectors):
                handle.write(json.dumps({"text": text, "embedding": [round(float(v), 7) for v in vector]}) + "\n")
    tmp.replace(out)


@handles_errors
def chat(
    model: Annotated[str, typer.Option("--model", help="chat-retrieval, smollm2-chat or a causal-LM folder.")] = (
        "chat-retrieval"
    ),
    text: Annotated[str | None, typer.Option("--text", help="Answer one message and exit.")] = None,
    unit: UnitOption = "best",
    max_new_tokens: Annotated[
        int | None, typer.Option("--max-new-tokens", help="Longest reply (generative models; default 128).")
    ] = None,
    cache: CacheOption = None,
) -> None:
    """Chat in the terminal (a prompt loop; empty line, Ctrl-D or Ctrl-C to leave), or answer --text once.

    A generative model streams its reply as it is written, then prints time to first token and tokens/s."""
    from siliconlab.tasks import load
    from siliconlab.tasks.generate import GenerativeChat

    with stages():
        bot = load(model, unit=unit, cache=cache_dir(cache))
    if "reply" not in getattr(bot, "methods", ()):
        raise UsageError(f"'{model}' is not a chat model: choose chat-retrieval, smollm2-chat or a causal-LM folder")
    answer = (lambda m: _stream(bot, m, max_new_tokens)) if "stream" in bot.methods else (lambda m: _answer(bot, m))
    if isinstance(bot, GenerativeChat):
        bot.check_max_new_tokens(max_new_tokens)  # bad option: one line before any prompt
    if text is not None:
        answer(text)
        return
    err.print(f"chat with {model} on {bot.unit} — empty line or Ctrl-D to leave")
    while True:
        try:
            message = input("you> ")
        except (EOFError, KeyboardInterrupt):
            err.print("")
            return
        if not message.strip():
            return
        try:
            answer(message)
        except UsageError as exc:
            err.print(f"[red]error:[/] {exc}", highlight=False)


def _stream(bot: Any, message: str, max_new_tokens: int | None) -> None:
    """Print the reply piece by piece as it is written (plain stdout writes: rich would buffer a line)."""
    pieces = bot.stream(message, max_new_tokens)  # input errors are raised here, before "bot>" is printed
    sys.stdout.write("bot> ")
    sys.stdout.flush()
    first, pending = True, ""
    for piece in pieces:
        if not piece.strip():  # whitespace waits for the next word: a reply's trailing newline is not printed
            pending += piece
            continue
        sys.stdout.write(piece.lstrip() if first else pending + piece)
        sys.stdout.flush()
        first, pending = False, ""
    sys.stdout.write("\n")
    sys.stdout.flush()
    stats = bot.last_stats
    note = f"{stats['tokens']} tokens, stopped: {stats['stopped']}"
    if stats["truncated_tokens"]:
        note += f", first {stats['truncated_tokens']} message tokens dropped to fit the context"
    speed = f"time to first token {stats['ttft_ms']:.0f} ms, {stats['tokens_per_s']:.1f} tokens/s"
    err.print(f"     [dim]{bot.unit}, {speed}, "
              f"{note}[/]", highlight=False)  # fmt: skip


def _answer(bot: Any, message: str) -> None:
    answer = bot.reply(message)
    console.print(f"bot> {answer['reply']}", highlight=False)
    note = f"matched “{_short(answer['matched'], 50)}” (cosine {answer['score']:.2f})"
    err.print(f"     [dim]{bot.unit}, {answer['ms']:.1f} ms, {note}[/]", highlight=False)
