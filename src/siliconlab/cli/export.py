"""`siliconlab export-triton`: a Triton model repository for a stock tritonserver (Docker, Kubernetes, KServe)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from siliconlab.cli.common import DEFAULT_CACHE, console, handles_errors, int_list, resolve_threads
from siliconlab.errors import UsageError


@handles_errors
def export_triton(
    model: Annotated[str, typer.Argument(help="minilm, sentiment, spam, or a local model directory.")],
    units: Annotated[
        str, typer.Option("--units", "-u", help="Comma-separated ONNX units; the first is the default ensemble.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The model repository folder to write.")],
    max_batch: Annotated[int, typer.Option("--max-batch", help="max_batch_size of every model.")] = 32,
    max_queue_delay_us: Annotated[
        int, typer.Option("--max-queue-delay-us", help="Dynamic batcher: how long a request may wait for others.")
    ] = 1000,
    instances: Annotated[int, typer.Option("--instances", help="Instances of each model (instance_group count).")] = 1,
    name: Annotated[
        str | None, typer.Option("--name", help="Model name in the repository.", show_default="the model's name")
    ] = None,
    length_buckets: Annotated[
        str,
        typer.Option(
            "--length-buckets",
            help="Token lengths a request is padded up to, so similar texts batch together; 'none': its own longest "
            "text (int8 answers closer to the Python API's, but only equal lengths batch).",
        ),
    ] = "16,32,64,128,256,512",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a non-empty --out folder.")] = False,
    cache: Annotated[
        Path, typer.Option("--cache", help="The artifact store to convert into or reuse.")
    ] = DEFAULT_CACHE,
    threads: Annotated[int | None, typer.Option(help="CPU threads for conversion and parity runs.")] = None,
) -> None:
    """Write a Triton model repository: tokenizer (Python backend), each unit's parity-gated ONNX graph
    (onnxruntime backend, dynamic batching), a post-processor for classifiers and ensembles that take text.

    The embedded server of `siliconlab serve` has only the Python backend, so the repository's ONNX models run
    on a stock Triton (see docs/serving.md: Docker, Kubernetes, KServe).
    """
    from siliconlab.serve.export import export_repository
    from siliconlab.serve.export.templates import Batching

    for option, value, low in (("--max-batch", max_batch, 1), ("--instances", instances, 1)):
        if value < low:
            raise UsageError(f"{option} must be >= {low}, got {value}")
    if max_queue_delay_us < 0:
        raise UsageError(f"--max-queue-delay-us must be >= 0, got {max_queue_delay_us}")
    names = [part.strip() for part in units.split(",") if part.strip()]
    buckets = () if length_buckets.strip().lower() == "none" else tuple(int_list(length_buckets, "--length-buckets"))
    batching = Batching(max_batch, max_queue_delay_us, instances)
    threads = resolve_threads(threads)
    result = export_repository(model, names, out, batching, overwrite, name, cache, threads, buckets)
    table = Table(title=f"Triton repository {result.repository} ({result.task})")
    for column in ("model", "kind", "backend", "unit"):
        table.add_column(column)
    for entry in result.models:
        table.add_row(entry.name, entry.kind, entry.backend, entry.unit)
    console.print(table)
    console.print(
        f"serve it: docker run --rm -p8000:8000 -p8001:8001 -p8002:8002 -v {result.repository.resolve()}:/models "
        'nvcr.io/nvidia/tritonserver:24.10-py3 bash -c "pip install tokenizers && '
        'tritonserver --model-repository=/models"',
        soft_wrap=True,
        highlight=False,
    )
