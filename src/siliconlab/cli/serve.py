"""`siliconlab serve`: the task models behind NVIDIA Triton (PyTriton), KServe v2 over HTTP and gRPC."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from siliconlab.cli.common import CacheOption, console, err, handles_errors, stages
from siliconlab.serve.config import (
    DRAIN_TIMEOUT_S,
    MAX_BATCH,
    MAX_CHAT_MESSAGES,
    MAX_QUEUE_DELAY_US,
    MAX_REQUEST_BYTES,
    MAX_REQUEST_TOKENS,
    MAX_TEXTS,
)

Models = Annotated[
    list[str] | None,
    typer.Argument(help="minilm, sentiment, spam, chat, smollm2-chat, or local model folders.", show_default=False),
]
Unit = Annotated[str, typer.Option("--unit", help="A unit name, or 'best' (fastest stable unit benched here).")]
Host = Annotated[str, typer.Option("--host", help="Address to bind; 0.0.0.0 exposes the server to the network.")]
HttpPort = Annotated[int, typer.Option("--http-port", help="KServe v2 HTTP/REST port.")]
GrpcPort = Annotated[int, typer.Option("--grpc-port", help="KServe v2 gRPC port.")]
MetricsPort = Annotated[int, typer.Option("--metrics-port", help="Prometheus metrics port.")]
MaxBatch = Annotated[int, typer.Option("--max-batch", help="Largest batch Triton forms (1 turns batching off).")]
Delay = Annotated[int, typer.Option("--max-queue-delay-us", help="How long a request may wait for batch mates (µs).")]
MaxQueue = Annotated[
    int | None,
    typer.Option("--max-queue", help="Bound the requests a model may hold waiting (beyond: 503). Default: no bound; "
                 "Triton's bounded queue stalls ~1 request in 20 by 0.5 s (docs/serving.md).", show_default=False),
]  # fmt: skip
OpenaiPort = Annotated[
    int | None,
    typer.Option("--openai-port", help="Also start an OpenAI-compatible front (/v1/embeddings, /v1/chat/completions)."),
]
Drain = Annotated[int, typer.Option("--drain-timeout", help="Seconds to finish in-flight requests on SIGTERM/Ctrl-C.")]
Threads = Annotated[int | None, typer.Option("--threads", help="Threads per model (default: the machine's).")]
Cache = CacheOption
KeyFile = Annotated[
    Path | None,
    typer.Option("--api-key-file", help="API keys, one per line, in a file only you can read (chmod 600); or set "
                 "SILICONLAB_API_KEY. Requests then need 'Authorization: Bearer <key>'.", show_default=False),
]  # fmt: skip
Insecure = Annotated[
    bool, typer.Option("--insecure-no-auth", help="Allow --host beyond loopback without an API key (anyone may call).")
]
Gateway = Annotated[
    bool, typer.Option("--gateway/--no-gateway", help="Triton behind siliconlab's gateway: a drain that refuses new "
                       "requests first, the key check (always on with a key). Off: Triton's own ports and drain, "
                       "~1.5-5 ms less per request.")
]  # fmt: skip
RequestBytes = Annotated[int, typer.Option("--max-request-bytes", help="OpenAI front: largest request body (413).")]
Texts = Annotated[int, typer.Option("--max-texts", help="OpenAI front: most inputs per embeddings call (400).")]
Tokens = Annotated[int, typer.Option("--max-request-tokens", help="OpenAI front: most tokens per embeddings call.")]
Messages = Annotated[int, typer.Option("--max-chat-messages", help="Most messages per chat request (400).")]


@handles_errors
def serve(
    models: Models = None,
    unit: Unit = "best",
    host: Host = "127.0.0.1",
    http_port: HttpPort = 8000,
    grpc_port: GrpcPort = 8001,
    metrics_port: MetricsPort = 8002,
    max_batch: MaxBatch = MAX_BATCH,
    max_queue_delay_us: Delay = MAX_QUEUE_DELAY_US,
    max_queue: MaxQueue = None,
    openai_port: OpenaiPort = None,
    drain_timeout: Drain = DRAIN_TIMEOUT_S,
    threads: Threads = None,
    cache: Cache = None,
    api_key_file: KeyFile = None,
    insecure_no_auth: Insecure = False,
    gateway: Gateway = True,
    max_request_bytes: RequestBytes = MAX_REQUEST_BYTES,
    max_texts: Texts = MAX_TEXTS,
    max_request_tokens: Tokens = MAX_REQUEST_TOKENS,
    max_chat_messages: Messages = MAX_CHAT_MESSAGES,
) -> None:
    """Serve task models through Triton: HTTP + gRPC (KServe v2), dynamic batching, metrics, drain on SIGTERM."""
    from siliconlab.serve.auth import ENV_KEY, is_loopback_host, load_keys
    from siliconlab.serve.config import ServeOptions
    from siliconlab.serve.models import load_bindings
    from siliconlab.serve.server import Server

    options = ServeOptions(models=tuple(models or ["minilm"]), unit=unit, host=host, http_port=http_port,
                           grpc_port=grpc_port, metrics_port=metrics_port, max_batch=max_batch,
                           max_queue_delay_us=max_queue_delay_us, max_queue=max_queue, openai_port=openai_port,
                           drain_timeout_s=drain_timeout, threads=threads, cache=cache,
                           api_keys=load_keys(api_key_file), insecure_no_auth=insecure_no_auth, gateway=gateway,
                           max_request_bytes=max_request_bytes, max_texts=max_texts,
                           max_request_tokens=max_request_tokens,
                           max_chat_messages=max_chat_messages).check()  # fmt: skip
    os.environ.pop(ENV_KEY, None)  # read: Triton and its backend stubs need not inherit it
    if not options.api_keys and not is_loopback_host(host):
        err.print(f"[bold red]warning[/]: --host {host} without an API key: anyone who reaches this machine may call "
                  "every model (--insecure-no-auth)", highlight=False)  # fmt: skip

    def loaded(name: str, pipeline: Any) -> None:
        err.print(f"loaded [bold]{name}[/] on {pipeline.unit}", highlight=False)

    with stages():
        bindings = load_bindings(options.models, unit, cache, threads, on_loaded=loaded)
    server = Server(options, bindings)
    err.print("starting Triton …")
    begin = time.perf_counter()
    server.start()
    err.print(f"Triton started in {time.perf_counter() - begin:.1f} s", highlight=False)
    stop = threading.Event()
    _on_signals(stop)
    front = None
    try:
        if openai_port is not None:
            from siliconlab.serve.openai_front import Front

            front = Front(server, bindings, host, openai_port)
            front.start()
        _print_ready(server, bindings, front)
        server.wait(stop)
    finally:
        err.print("draining: finishing in-flight requests …")
        begin = time.perf_counter()
        if front is not None:
            front.stop()
        server.stop()
        err.print(f"stopped: drained and shut down in {time.perf_counter() - begin:.1f} s")
    _exit_now()


def _exit_now() -> None:
    """Exit 0 without the interpreter's teardown: Triton has exited, its shared memory and workspace are
    released, and unloading torch + transformers module by module would add seconds to the drain on a busy
    machine (measured: 3-5 s on the 2-core VM)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _on_signals(stop: threading.Event) -> None:
    """SIGTERM and Ctrl-C both start the drain (a second Ctrl-C does not skip it: Triton's own timeout bounds it)."""

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _print_ready(server: Any, bindings: list[Any], front: Any) -> None:
    from siliconlab.serve.server import curl_line

    console.print(
        f"[bold green]ready[/]: {', '.join(f'{b.name} ({b.unit})' for b in bindings)}", highlight=False, soft_wrap=True
    )
    console.print(f"  HTTP     {server.http_url}/v2/models/<model>/infer", highlight=False)
    console.print(f"  gRPC     {server.grpc_url}", highlight=False)
    console.print(f"  health   {server.http_url}/v2/health/ready", highlight=False)
    console.print(f"  metrics  {server.metrics_url}", highlight=False)
    if front is not None:
        console.print(f"  OpenAI   {front.url}/v1  (POST /v1/embeddings, /v1/chat/completions; GET /v1/models)",
                      highlight=False)  # fmt: skip
        embedder, classifier = front.tei
        if embedder is not None or classifier is not None:
            routes = [r for r, m in (("/embed", embedder), ("/predict", classifier)) if m is not None]
            console.print(f"  TEI      {front.url}  (POST {', '.join(routes)}, /tokenize; GET /info)", highlight=False)
    if any(b.decoupled for b in bindings):
        console.print(f"  stream   {server.http_url}/v2/models/<model>/generate_stream (SSE) or gRPC stream_infer",
                      highlight=False)  # fmt: skip
    console.print(f"  log      {server.log_file}", highlight=False)
    if server.options.api_keys:
        console.print("  auth     every route but /v2/health/* needs 'Authorization: Bearer <key>' (gRPC: metadata)",
                      highlight=False)  # fmt: skip
    text_model = next((b for b in bindings if b.inputs[0].name == "text" and not b.decoupled), bindings[0])
    console.print("try:", highlight=False)
    auth = bool(server.options.api_keys)
    print(f"  {curl_line(server, text_model, auth)}", flush=True)
    for binding in bindings:
        if binding.decoupled and binding is not text_model:
            print(f"  {curl_line(server, binding, auth)}", flush=True)
    console.print("Ctrl-C or SIGTERM drains and stops.", highlight=False)
