"""The embedded Triton server: bind the models, start, report the URLs, drain on SIGTERM/Ctrl-C.

PyTriton starts NVIDIA's `tritonserver` binary as a child process and runs our Python callables in this one;
the Python-backend stub in between is the model file of PyTriton's model store. Two things are adjusted here:
the stub must load the libpython of the interpreter running us (under pyenv it would otherwise pick Debian's
and fail), and PyTriton answers a whole batch with one error (a traceback at that), so the model file gets
a small patch that turns one request's error into that request's own error (see models.py). Triton's admin
APIs are off for everyone (`RESTRICTED_OFF`), and with API keys or `gateway` Triton sits behind serve/gateway.py,
which checks keys and drains: its HTTP on a private loopback port, its gRPC on a Unix socket only this user reaches.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sysconfig
import threading
import time
from pathlib import Path
from typing import Any

from siliconlab.errors import SiliconlabError
from siliconlab.serve.binding import CODE_KEY, ERROR_KEY, Binding
from siliconlab.serve.config import ServeOptions, free_port
from siliconlab.serve.generative import StreamInfer

#: Appended to the generated model.py: a response carrying the reserved keys becomes that request's error,
#: with the code the callable chose (INVALID_ARG -> HTTP 400 / gRPC INVALID_ARGUMENT, INTERNAL -> 500).
ERROR_PATCH = f'''

# --- added by siliconlab.serve: one request's error stays that request's -----------------------------------
_siliconlab_wrap_response = _wrap_response


def _wrap_response(response, requested_outputs_names, model_outputs_dict):
    data = response.data
    if data is not None and "{ERROR_KEY}" in data:
        try:
            message = bytes(data["{ERROR_KEY}"].reshape(-1)[0]).decode("utf-8", "replace")
            code_name = bytes(data["{CODE_KEY}"].reshape(-1)[0]).decode()
            code = getattr(pb_utils.TritonError, code_name, pb_utils.TritonError.INTERNAL)
        except Exception:
            message, code = "the model reported an error that could not be read", pb_utils.TritonError.INTERNAL
        return pb_utils.InferenceResponse(error=pb_utils.TritonError(message, code))
    return _siliconlab_wrap_response(response, requested_outputs_names, model_outputs_dict)


# --- added by siliconlab.serve: an empty tensor is that request's 400; a failure is one line, not a traceback ---
_siliconlab_execute = TritonPythonModel.execute


def _siliconlab_empty_input(request):
    for tensor in request.inputs():
        if 0 in list(tensor.shape()):
            return tensor.name()
    return None


def _siliconlab_checked_execute(self, triton_requests):
    refused = {{}}
    for index, request in enumerate(triton_requests):
        name = _siliconlab_empty_input(request)
        if name is not None:  # PyTriton's shared memory cannot carry an empty tensor (it raised a traceback)
            refused[index] = pb_utils.InferenceResponse(error=pb_utils.TritonError(
                f"input '{{name}}' holds no values (its shape has a 0)", pb_utils.TritonError.INVALID_ARG))
    kept = [request for index, request in enumerate(triton_requests) if index not in refused]
    if self._decoupled_model:
        for index, response in refused.items():
            sender = triton_requests[index].get_response_sender()
            sender.send(response, flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
    try:
        answered = _siliconlab_execute(self, kept) if kept else []
    except pb_utils.TritonModelException as exc:
        LOGGER.error(str(exc))
        raise pb_utils.TritonModelException("the model failed on this batch; the server log says why") from None
    if self._decoupled_model:
        return None
    answered = iter(answered or [])
    return [refused[index] if index in refused else next(answered) for index in range(len(triton_requests))]


TritonPythonModel.execute = _siliconlab_checked_execute
'''

#: Triton's admin APIs: loading/unloading models and the repository index, shared memory registration, tracing,
#: log settings. The statistics endpoint stays open (read-only) so load tests can read queue vs compute time.
RESTRICTED = ["shared-memory", "model-repository", "trace", "logging"]
#: The admin APIs are off for everyone, not token-protected. Triton 2.51 takes its restriction token only as a
#: command-line value, which every local user reads in /proc/<pid>/cmdline. So the header value it expects holds
#: a line feed: no HTTP/1.1 request can carry one (Triton's parser closes the connection) and gRPC refuses it
#: as an illegal metadata value, so nothing can ever match and there is no secret to leak. Models are loaded
#: from the store at start-up (`--load-model=*`), so PyTriton needs none of these APIs (see `_sealed_triton`).
RESTRICTED_OFF = ",".join(RESTRICTED) + ":siliconlab-admin-api=off\nno request can carry this value"


def python_libdir_on_path() -> None:
    """Put this interpreter's libpython first for the Python-backend stub (the server inherits os.environ)."""
    libdir = sysconfig.get_config_var("LIBDIR")
    current = os.environ.get("LD_LIBRARY_PATH", "")
    if libdir and libdir not in current.split(":"):
        os.environ["LD_LIBRARY_PATH"] = f"{libdir}:{current}" if current else libdir


def triton_log_file(options: ServeOptions) -> Path:
    folder = Path(os.environ.get("SILICONLAB_SERVE_LOGS", Path.home() / ".cache" / "siliconlab" / "serve"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"triton-{options.http_port}.log"


class Server:
    """Triton serving `bindings` with `options`; `start()` returns once every model is ready."""

    def __init__(self, options: ServeOptions, bindings: list[Binding]):
        self.options = options
        self.bindings = bindings
        self.log_file = triton_log_file(options)
        self._triton: Any = None
        self._stopped = threading.Event()
        self.gateway: Any = None
        #: with API keys (or --gateway), Triton binds loopback on private ports behind the gateway (serve/gateway.py)
        self._guarded = bool(options.api_keys) or options.gateway
        self._triton_ports = (free_port(), free_port()) if self._guarded else (options.http_port, options.grpc_port)
        #: behind the gateway, Triton's gRPC listens on a Unix socket in a folder only this user may enter (set by
        #: start): its admin APIs, which a raw HTTP/2 client could reach with the restriction header from /proc,
        #: are then out of other local users' reach; Triton's HTTP port stays loopback TCP (HTTP/1.1 cannot send it)
        self._grpc_socket: Path | None = None

    @property
    def http_url(self) -> str:
        """Where clients reach the KServe HTTP routes: the address bound (0.0.0.0 stays 0.0.0.0)."""
        return f"http://{_url_host(self.options.host)}:{self.options.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{_url_host(self.options.host)}:{self.options.grpc_port}"

    @property
    def metrics_url(self) -> str:
        host = "127.0.0.1" if self._guarded else self.options.host
        return f"http://{_url_host(host)}:{self.options.metrics_port}/metrics"

    @property
    def triton_grpc_url(self) -> str:
        """Triton's own gRPC address (the gateway's and the OpenAI front's upstream): `unix:<socket>:<port>` behind
        the gateway (gRPC takes everything after `unix:` as the socket's path), else host:port."""
        if self._grpc_socket is not None:
            return f"unix:{self._grpc_socket}:{self._triton_ports[1]}"
        return f"{_url_host(_connect_host(self.options.host))}:{self._triton_ports[1]}"

    def start(self) -> None:
        from pytriton.triton import TritonLifecyclePolicy, TritonSecurityConfig
        from pytriton.utils.workspace import Workspace

        python_libdir_on_path()
        # PyTriton leaves a shared-memory segment registered at exit; multiprocessing's resource tracker (a child
        # process, so the filter must be in its environment) unlinks it and would print a warning saying so.
        quiet = "ignore::UserWarning:multiprocessing.resource_tracker"
        os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), quiet]))
        logging.getLogger("pytriton").setLevel(logging.WARNING)
        workspace = Workspace()
        if self._guarded:
            private = Path(workspace.path) / "grpc"
            private.mkdir(mode=0o700)
            private.chmod(0o700)  # whatever the umask
            self._grpc_socket = private / "triton"
            if len(f"{self._grpc_socket}:{self._triton_ports[1]}") > 100:  # a socket path holds at most 107 bytes
                raise SiliconlabError(f"the temporary folder's path is too long for a Unix socket: {workspace.path}")
        policy = TritonLifecyclePolicy(launch_triton_on_startup=False, local_model_store=True)
        triton = _sealed_triton()(config=self._triton_config(), workspace=workspace, triton_lifecycle_policy=policy,
                                  security_config=TritonSecurityConfig(restricted_endpoints=[]))  # fmt: skip
        _restrict_all(triton._triton_server_config)
        self._triton = triton
        cancel_dir = Path(workspace.path) / "siliconlab-cancelled"
        cancel_dir.mkdir(exist_ok=True)
        try:
            for binding in self.bindings:
                binding.infer.keys = self.options.api_keys  # checked again by the model: see _forward_key
                self._bind(triton, binding)
                customize_model_store(Path(workspace.model_store_path) / binding.name, binding, cancel_dir)
                if binding.decoupled:
                    assert isinstance(binding.infer, StreamInfer)  # decoupled: a generative model's stream
                    binding.infer.cancel_dir = cancel_dir
            triton.run()
            private_regions()
            if self._guarded:
                from siliconlab.serve.gateway import Gateway

                o = self.options
                self.gateway = Gateway(o.host, o.http_port, o.grpc_port, f"http://127.0.0.1:{self._triton_ports[0]}",
                                       self.triton_grpc_url, o.api_keys)  # fmt: skip
                self.gateway.start()
        except Exception as exc:
            self.stop()
            raise SiliconlabError(f"the Triton server did not start: {exc} (its log: {self.log_file})") from None
        # PyTriton's shutdown calls gc.collect() once per model; over the heap of torch + transformers that costs
        # seconds on a busy 2-core machine. Everything alive now lives until exit, so freeze it out of collection.
        gc.freeze()

    def _triton_config(self) -> Any:
        from pytriton.triton import TritonConfig

        o = self.options
        host = "127.0.0.1" if self._guarded else o.host
        grpc_host = f"unix:{self._grpc_socket}" if self._grpc_socket is not None else host
        http_port, grpc_port = self._triton_ports
        return TritonConfig(http_address=host, http_port=http_port, grpc_address=grpc_host, grpc_port=grpc_port,
                            metrics_address=host, metrics_port=o.metrics_port, allow_metrics=True,
                            allow_gpu_metrics=Path("/dev/nvidiactl").exists(),  # else DCGM prints an NVML error
                            exit_timeout_secs=o.drain_timeout_s, log_file=self.log_file, log_verbose=o.log_verbose,
                            strict_readiness=True, **_forward_key(o))  # fmt: skip

    def _bind(self, triton: Any, binding: Binding) -> None:
        from pytriton.model_config import DynamicBatcher, ModelConfig, QueuePolicy, Tensor

        o = self.options
        policy = None if o.max_queue is None else QueuePolicy(max_queue_size=o.max_queue)  # see config.py
        batcher = DynamicBatcher(max_queue_delay_microseconds=o.max_queue_delay_us, default_queue_policy=policy)
        if binding.decoupled:  # a stream of responses per request; generation runs one sequence at a time
            config = ModelConfig(batching=False, decoupled=True)
        else:
            config = ModelConfig(max_batch_size=o.max_batch, batcher=batcher)
        triton.bind(
            model_name=binding.name,
            infer_func=binding.infer,
            inputs=[Tensor(name=s.name, dtype=s.dtype, shape=s.shape, optional=s.optional) for s in binding.inputs],
            outputs=[Tensor(name=s.name, dtype=s.dtype, shape=s.shape) for s in binding.outputs],
            config=config,
            strict=False,  # the reserved error keys are not declared outputs
        )

    def is_alive(self) -> bool:
        return self._triton is not None and not self._stopped.is_set() and self._triton.is_alive()

    def stop(self) -> float:
        """Drain: stop taking requests, finish those in flight (up to the drain timeout), exit. Behind the gateway,
        it refuses new requests (503 / UNAVAILABLE) and waits for the accepted ones before Triton stops."""
        if self._triton is None or self._stopped.is_set():
            return 0.0
        self._stopped.set()
        begin = time.perf_counter()
        if self.gateway is not None:
            left = self.gateway.drain_and_stop(self.options.drain_timeout_s)
            if left:
                logging.getLogger("siliconlab").warning("drain timeout: %d request(s) still running were cut", left)
        stubs = _backend_stubs()
        self._triton.stop()
        for stub in stubs:  # when the drain timeout expires Triton exits at once and leaves its stubs running
            with contextlib.suppress(Exception):
                if stub.is_running():
                    stub.kill()
        return time.perf_counter() - begin

    def wait(self, stop: threading.Event, poll_s: float = 1.0) -> None:
        """Block until `stop` is set or the server dies on its own (then raise)."""
        while not stop.wait(poll_s):
            if not self._triton.is_alive():
                raise SiliconlabError(f"the Triton server stopped unexpectedly (its log: {self.log_file})")


def _forward_key(options: ServeOptions) -> dict[str, str]:
    """With keys, Triton hands each request's `Authorization` header (gRPC: metadata) to the model as a request
    parameter and the model checks it too (models.py): inference on Triton's private loopback ports, which another
    local user can reach past the gateway, needs the key as well. The pattern holds no secret."""
    if not options.api_keys:
        return {}
    return {"http_header_forward_pattern": "(?i)^authorization$", "grpc_header_forward_pattern": "(?i)^authorization$"}


def _restrict_all(config: Any) -> None:
    """Put `RESTRICTED_OFF` on Triton's command line. PyTriton joins its arguments into one string and splits it
    on whitespace, which would cut the value at its line feed, so a placeholder is swapped in after the split."""
    placeholder = "siliconlab-restricted-off"
    for option in ("http-restricted-api", "grpc-restricted-protocol"):
        config[option] = placeholder
    original = config.to_args_list
    config.to_args_list = lambda: [RESTRICTED_OFF if arg == placeholder else arg for arg in original()]


def _sealed_triton() -> Any:
    """PyTriton's Triton without its log-level check, the one call it makes to an admin API (log settings)."""
    from pytriton.triton import Triton

    class NoLogCheck:
        def check(self, skip_update: bool = False) -> None:
            pass

    class SealedTriton(Triton):
        def _initialize_server(self) -> None:
            super()._initialize_server()
            self._log_level_checker = NoLogCheck()

    return SealedTriton


def private_regions() -> list[Path]:
    """Make this process's Python-backend shared memory regions (`/dev/shm/pytrtion<pid>-*`: every request's
    tensors pass through them) 0600. Triton's backend creates them 0644 whatever the umask, and names them at
    random, so they cannot be made private before they exist: a local user who opened one during start-up keeps
    that handle. Done before the gateway takes requests; the regions created at start-up are all there is."""
    regions = sorted(Path("/dev/shm").glob(f"pytrtion{os.getpid()}-*"))
    for region in regions:
        with contextlib.suppress(FileNotFoundError):
            region.chmod(0o600)
    return regions


def _backend_stubs() -> list[Any]:
    """Our Triton's Python-backend stub processes (children of its tritonserver)."""
    import psutil

    with contextlib.suppress(psutil.Error):
        children = psutil.Process().children(recursive=True)
        return [p for p in children if "triton_python_backend_stub" in " ".join(p.cmdline()[:1])]
    return []


def customize_model_store(folder: Path, binding: Binding, cancel_dir: Path | None = None) -> None:
    """Patch the generated model file (per-request errors; a streaming model's cancellation, see
    serve/generative.py) and add the binding's config parameters."""
    model_file = folder / "1" / "model.py"
    source = model_file.read_text()
    if "def _wrap_response(" not in source or "pb_utils" not in source:
        raise SiliconlabError("this PyTriton's model file lacks _wrap_response: serve needs nvidia-pytriton 0.7")
    patch = ERROR_PATCH
    if binding.decoupled:
        from siliconlab.serve.generative import stream_patch

        if "class DecoupledResponsesHandler" not in source or "def _wrap_request(" not in source:
            raise SiliconlabError("this PyTriton's model file lacks its decoupled handler: serve needs PyTriton 0.7")
        patch += stream_patch(cancel_dir or folder / "cancelled")
    model_file.write_text(source + patch)
    if binding.parameters:
        entries = "".join(
            f'parameters {{\n  key: "{key}"\n  value {{\n    string_value: "{_pbtxt_escape(value)}"\n  }}\n}}\n'
            for key, value in binding.parameters.items()
        )
        config = folder / "config.pbtxt"
        config.write_text(config.read_text() + entries)


def _pbtxt_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _connect_host(host: str) -> str:
    """An address this process can connect to for a server bound to `host` (all interfaces: loopback)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


def curl_line(server: Server, binding: Binding, auth: bool = False) -> str:
    """A ready-to-paste curl call for one model (text models; the ids variant takes token ids); with keys, the
    header reads the key from the environment (never printed)."""
    key = ' -H "Authorization: Bearer $SILICONLAB_API_KEY"' if auth else ""
    if binding.decoupled:  # streams server-sent events as the reply is written
        body = '{"text":"What is the capital of France?","max_tokens":32}'
        return f"curl -sN{key} {server.http_url}/v2/models/{binding.name}/generate_stream -d '{body}'"
    body = '{"inputs":[{"name":"text","shape":[1,1],"datatype":"BYTES","data":["I loved this film"]}]}'
    return f"curl -s{key} {server.http_url}/v2/models/{binding.name}/infer -d '{body}'"
