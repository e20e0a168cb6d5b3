"""What every command shares: consoles, the error boundary (one line + exit code, never a traceback),
option parsing helpers and the default artifact cache."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from siliconlab.errors import SiliconlabError, UsageError
from siliconlab.paths import default_cache

#: A terminal's own width; pipes and CI logs get 100 columns (or $COLUMNS), the width every table fits by default.
#: `--wide` prints a table at its full width whatever this says (print_wide).


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """Rich's own handling exits 1; a reader leaving is no failure of ours (see _reader_left)."""
        self.quiet = True
        _reader_left()


console = _Console(width=None if Console().is_terminal or os.environ.get("COLUMNS") else 100)
err = Console(stderr=True, soft_wrap=True)

DEFAULT_CACHE = default_cache()

#: The one artifact store every command reads and `convert` writes: --cache DIR, else $SILICONLAB_CACHE, else
#: ~/.cache/siliconlab/artifacts. None means "the default", resolved when the command runs (so a test or a
#: script that sets SILICONLAB_CACHE after import is honoured).
CacheOption = Annotated[
    Path | None,
    typer.Option(
        "--cache",
        help="Artifact store to read and convert into.",
        show_default="$SILICONLAB_CACHE or ~/.cache/siliconlab/artifacts",
    ),
]


def cache_dir(cache: Path | None) -> Path:
    """--cache, else $SILICONLAB_CACHE, else the default store; a file there is refused before any work."""
    path = Path(cache) if cache is not None else default_cache()
    if path.exists() and not path.is_dir():
        raise UsageError(f"--cache {path} is a file, not a folder")
    return path


def use_cache(cache: Path | None) -> Path:
    """--cache for a command whose loads happen in other processes too (batch's Ray actors): it becomes
    $SILICONLAB_CACHE for this process and every child, the variable's one meaning."""
    path = cache_dir(cache)
    if cache is not None:
        os.environ["SILICONLAB_CACHE"] = str(path.resolve())
    return path


def stages() -> Any:
    """The first run's stages on stderr while a command loads its model (siliconlab/progress.py)."""
    from siliconlab.progress import shown_stages

    return shown_stages(err)


def _quiet_libraries() -> None:
    """Library progress bars and INFO chatter would bury our tables; our own warnings still show."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")  # coremltools' per-pass progress bars
    import warnings

    for category in (FutureWarning, DeprecationWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category, module=r"(transformers|torch|coremltools|nncf)\b.*")
    warnings.filterwarnings("ignore", message=r".*TracerWarning.*|Converting a tensor to a Python boolean.*")
    logger = logging.getLogger("siliconlab")
    if not logger.handlers:
        handler: logging.Handler = RichHandler(console=err, show_time=False, show_path=False, markup=False)
        if not err.is_terminal:  # logs and pipes: one line per record, never a box wrapped at 80 columns
            handler = _StderrHandler()
            handler.setFormatter(logging.Formatter("%(levelname)-8s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    # Stages are drawn by the commands that load a model (common.stages); elsewhere (bench workers, batch's own
    # bar) a stage is not a log line.
    logging.getLogger("siliconlab.progress").setLevel(logging.WARNING)
    for name in ("nncf", "onnxruntime", "transformers", "torch.onnx", "coremltools"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # transformers reads these when it is imported; importing it here just to configure it would cost seconds
    # on commands that never load a model (`units`, usage errors).
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (as rich's stderr console does): a stream captured or
    replaced after the handler was made (test runners, servers redirecting) still gets the lines."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:  # StreamHandler.__init__ assigns one; sys.stderr is read instead
        return None


def handles_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn SiliconlabError into one red line and its exit code; never a traceback for the user's mistakes."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _quiet_libraries()
        try:
            result = command(*args, **kwargs)
            sys.stdout.flush()  # a reader that left (`| head`) is found here, not in the interpreter's exit
            return result
        except BrokenPipeError:
            _reader_left()
        except SiliconlabError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None
        except OSError as exc:  # a file the system refused: say which and why, in one line
            where = f": {exc.filename}" if exc.filename else ""
            err.print(f"[bold red]error:[/] {exc.strerror or exc}{where}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


def _reader_left() -> None:
    """stdout's reader closed the pipe (`siliconlab ... | head`): stop quietly, as Unix tools do on SIGPIPE (exit
    141), and point stdout at /dev/null so the interpreter's final flush cannot raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise typer.Exit(141) from None


def output_dir(path: Path, option: str = "--out") -> Path:
    """Check an output folder before any work: it must be (or become) a writable folder, not a file. Folders
    made for the check are removed again; the command creates them when it has something to write."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path} is a file, not a folder")
    missing = [p for p in (path, *path.parents) if not p.exists()]  # created for the probe, removed after it
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".siliconlab-write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"{option} {path} is not a writable folder ({exc.strerror or exc})") from None
    finally:
        for folder in missing:  # deepest first: nothing is left behind if the command then fails on bad input
            try:
                folder.rmdir()
            except OSError:
                break
    return path


def int_list(value: str, option: str) -> list[int]:
    try:
        numbers = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"{option} takes comma-separated positive integers, got '{value}'") from None
    if not numbers or any(n < 1 for n in numbers):
        raise UsageError(f"{option} takes comma-separated positive integers, got '{value}'")
    return numbers


def resolve_threads(threads: int | None) -> int:
    from siliconlab.bench.machine import default_threads

    if threads is not None and threads < 1:
        raise UsageError(f"--threads must be >= 1, got {threads}")
    return threads or default_threads()


def print_wide(table: Table, wide: bool) -> None:
    """Print a table; with `wide`, at its own full width even past the console's (`--wide`: every column whole)."""
    from siliconlab.tables import print_table

    print_table(console, table, wide)
