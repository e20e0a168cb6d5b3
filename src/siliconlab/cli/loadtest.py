"""`siliconlab loadtest`: closed-loop concurrency sweep and open-loop Poisson load against a Triton server."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from siliconlab.cli.common import CacheOption, cache_dir, console, err, handles_errors, int_list, output_dir
from siliconlab.errors import UsageError


def _rates(value: str | None) -> tuple[float, ...]:
    if not value:
        return ()
    try:
        rates = tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise UsageError(f"--rate takes comma-separated requests/s, got '{value}'") from None
    return rates


def _serve_args(unit: str, max_batch: int | None, delay: int | None, max_queue: int | None) -> list[str]:
    args = ["--unit", unit]
    for option, value in (("--max-batch", max_batch), ("--max-queue-delay-us", delay), ("--max-queue", max_queue)):
        if value is not None:
            args += [option, str(value)]
    return args


@handles_errors
def loadtest(
    target: Annotated[
        str, typer.Argument(help="A server (http://127.0.0.1:8000, grpc://…, host:port) or a MODEL to serve.")
    ],
    model: Annotated[
        str | None, typer.Option("--model", help="Model name on the server.", show_default="minilm / the MODEL")
    ] = None,
    concurrency: Annotated[
        str | None,
        typer.Option(
            "--concurrency",
            "-c",
            help="Closed-loop steps: concurrent requests.",
            show_default="1,2,4,8,16 without --rate",
        ),
    ] = None,
    rate: Annotated[
        str | None, typer.Option("--rate", help="Open-loop steps: Poisson arrival rates, requests/s (comma list).")
    ] = None,
    duration: Annotated[float, typer.Option("--duration", help="Seconds per step.")] = 10.0,
    requests: Annotated[int | None, typer.Option("--requests", help="At most this many requests per step.")] = None,
    texts: Annotated[int, typer.Option("--texts", help="Distinct real texts (movie reviews and SMS) to cycle.")] = 200,
    protocol: Annotated[str, typer.Option("--protocol", help="http or grpc.")] = "http",
    check: Annotated[
        float | None,
        typer.Option("--check", help="Compare every answer with the single-request answer: cosine tolerance."),
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds before a request counts as timed out.")] = 30.0,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write loadtest.json, .md and .png here.")] = None,
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help="Allow a server on another host.")] = False,
    unit: Annotated[str, typer.Option("--unit", help="MODEL only: the unit `siliconlab serve` runs.")] = "best",
    max_batch: Annotated[int | None, typer.Option("--max-batch", help="MODEL only: passed to serve.")] = None,
    max_queue_delay_us: Annotated[int | None, typer.Option("--max-queue-delay-us", help="MODEL only.")] = None,
    max_queue: Annotated[int | None, typer.Option("--max-queue", help="MODEL only: passed to serve.")] = None,
    http_port: Annotated[
        int | None, typer.Option("--http-port", help="MODEL only: the server's HTTP port.", show_default="a free one")
    ] = None,
    grpc_port: Annotated[
        int | None, typer.Option("--grpc-port", help="MODEL only: the server's gRPC port.", show_default="a free one")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option("--metrics-port", help="MODEL only: the server's metrics port.", show_default="a free one"),
    ] = None,
    cache: CacheOption = None,
) -> None:
    """Load a Triton server with real texts: per step throughput, p50/p90/p99, errors by kind, Triton's queue
    vs compute time; `--check` proves every answer. Given a MODEL, starts `siliconlab serve` on loopback
    ports itself, runs, and stops it. The load generator shares this machine's cores with a local server."""
    from siliconlab.data import real_text_stream
    from siliconlab.serve.loadtest.run import LoadPlan
    from siliconlab.serve.loadtest.target import check_target, looks_like_url, normalise_url, server_ports

    if protocol not in ("http", "grpc"):
        raise UsageError(f"--protocol must be http or grpc, got '{protocol}'")
    if texts < 1:
        raise UsageError("--texts must be >= 1")
    if out is not None:
        output_dir(out)
    managed = not looks_like_url(target)
    asked_ports = {"--http-port": http_port, "--grpc-port": grpc_port, "--metrics-port": metrics_port}
    if not managed and any(port is not None for port in asked_ports.values()):
        named = ", ".join(option for option, port in asked_ports.items() if port is not None)
        raise UsageError(f"{named}: only for a MODEL the load test serves itself; {target} is a server already")
    if not managed and cache is not None:
        raise UsageError(f"--cache: only for a MODEL the load test serves itself; {target} is a server already")
    plan_args: dict[str, Any] = dict(
        protocol=protocol, texts=("placeholder",),
        concurrency=tuple(int_list(concurrency, "--concurrency")) if concurrency else () if rate else (1, 2, 4, 8, 16),
        rates=_rates(rate), duration=duration, requests=requests, timeout=timeout, check=check,
    )  # fmt: skip
    if not managed:
        url = normalise_url(target, protocol)
        check_target(url, allow_remote)
        if url.startswith("grpc") != (protocol == "grpc"):
            raise UsageError(f"{url} does not match --protocol {protocol}")
    served = model or (os.path.basename(target.rstrip("/")) if managed else "minilm")
    LoadPlan(url="http://127.0.0.1:1", model=served, **plan_args).validate()  # bad options: before any server starts
    plan_args["texts"] = tuple(real_text_stream(texts))
    serve_args = _serve_args(unit, max_batch, max_queue_delay_us, max_queue)
    if cache is not None:
        serve_args += ["--cache", str(cache_dir(cache))]
    ports = server_ports(http_port, grpc_port, metrics_port) if managed else None
    record = _run(target, None if managed else url, served, plan_args, serve_args, out, ports)
    rows = record["rows"]
    if check is not None and any(r["wrong"] or r["accepted_lost"] for r in rows):
        raise typer.Exit(1)


def _run(
    target: str,
    url: str | None,
    served: str,
    plan_args: dict[str, Any],
    serve_args: list[str],
    out: Path | None,
    ports: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Start the server when given a MODEL (url None), run the plan with a live table, write the report."""
    import asyncio

    from siliconlab.serve.loadtest import report
    from siliconlab.serve.loadtest.run import LoadPlan, run_plan
    from siliconlab.serve.loadtest.target import ManagedServer

    managed, protocol, check = url is None, plan_args["protocol"], plan_args["check"]
    log_path = out / "serve.log" if out else Path(tempfile.gettempdir()) / f"siliconlab-loadtest-{os.getpid()}.log"
    with ManagedServer(target, serve_args, log_path, ports=ports) if managed else (contextlib.nullcontext()) as server:
        if server is not None:
            url = server.url(protocol)
            err.print(f"serving {target} at {url} (log: {log_path})", highlight=False)
        assert url is not None  # given, or the managed server's
        plan = LoadPlan(url=url, model=served, **plan_args)
        record: dict[str, Any] = {"header": report.header(url, served, protocol, managed, _plan_dict(plan))}
        table = _table(record["header"])

        def step(row: dict[str, Any]) -> None:
            _add_row(table, row, check is not None)
            err.print(f"step {row['mode']} {row.get('concurrency', row.get('rate'))}: "
                      f"{row['throughput_rps']:.1f} req/s, p99 {row['p99_ms']:.1f} ms", highlight=False)  # fmt: skip

        rows, info = asyncio.run(run_plan(plan, step))
    record |= {"rows": rows, "info": info, "load_average_after": list(os.getloadavg())}
    console.print(table)
    if info.get("statistics_error"):
        err.print(f"[yellow]{info['statistics_error']}[/]", highlight=False)
    console.print(f"load generator: {record['header']['load_generator']}", highlight=False)
    if out is not None:
        for path in report.write(record, out):
            console.print(f"wrote {path}", highlight=False)
    return record


def _plan_dict(plan: Any) -> dict[str, Any]:
    return {
        "concurrency": list(plan.concurrency), "rates": list(plan.rates), "duration_s": plan.duration,
        "requests_cap": plan.requests, "texts": len(plan.texts), "timeout_s": plan.timeout, "check": plan.check,
        "texts_source": "siliconlab.data.real_text_stream: movie-review lines and SMS, one text per request",
    }  # fmt: skip


def _table(head: dict[str, Any]) -> Table:
    table = Table(title=f"loadtest {head['model']} at {head['target']}")
    for column in ("step", "sent", "ok", "req/s", "p50 ms", "p90 ms", "p99 ms", "errors", "wrong", "queue ms", "batch"):
        table.add_column(column, justify="left" if column in ("step", "errors") else "right")
    return table


def _add_row(table: Table, row: dict[str, Any], checked: bool) -> None:
    server = row.get("server") or {}
    step = f"c={row['concurrency']}" if row["mode"] == "closed" else f"{row['rate']:g}/s"
    errors = ", ".join(f"{k} {v}" for k, v in row["errors"].items()) or "0"
    table.add_row(
        step, str(row["sent"]), str(row["answered"]), f"{row['throughput_rps']:.1f}", f"{row['p50_ms']:.1f}",
        f"{row['p90_ms']:.1f}", f"{row['p99_ms']:.1f}", errors, str(row["wrong"]) if checked else "-",
        f"{server['queue_ms']:.2f}" if "queue_ms" in server else "-",
        f"{server['mean_batch']:.2f}" if "mean_batch" in server else "-",
    )  # fmt: skip
