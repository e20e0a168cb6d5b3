"""The embedded Triton server: bind the models, start, report the URLs, drain on SIGTERM/Ctrl-C.

PyTriton starts NVIDIA's `tritonserver` binary as a child process and runs our Python callables in this one;
the Python-backend stub in between is the model file of PyTriton's model store. Two things are adjusted here:
the stub must load the libpython of the interpreter running us (under pyenv it would otherwise pick Debian's
and fail), and PyTriton answers a whole batch with one error (a traceback at that), so the model file gets
a small patch that turns one request's error into that request's own error (see models.py).
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
from siliconlab.serve.config import ServeOptions
from siliconlab.serve.models import CODE_KEY, ERROR_KEY, Binding

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
'''

#: Endpoints that need PyTriton's generated token: loading/unloading models, shared memory, tracing, log
#: settings. The statistics endpoint stays open (read-only) so load tests can read queue vs compute time.
RESTRICTED = ["shared-memory", "model-repository", "trace", "logging"]


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

    @property
    def http_url(self) -> str:
        return f"http://{_url_host(self.options.host)}:{self.options.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{_url_host(self.options.host)}:{self.options.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{_url_host(self.options.host)}:{self.options.metrics_port}/metrics"

    def start(self) -> None:
        from pytriton.triton import Triton, TritonLifecyclePolicy, TritonSecurityConfig
        from pytriton.utils.workspace import Workspace

        python_libdir_on_path()
        # PyTriton leaves a shared-memory segment registered at exit; multiprocessing's resource tracker (a child
        # process, so the filter must be in its environment) unlinks it and would print a warning saying so.
        quiet = "ignore::UserWarning:multiprocessing.resource_tracker"
        os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), quiet]))
        logging.getLogger("pytriton").setLevel(logging.WARNING)
        workspace = Workspace()
        policy = TritonLifecyclePolicy(launch_triton_on_startup=False, local_model_store=True)
        triton = Triton(config=self._triton_config(), workspace=workspace, triton_lifecycle_policy=policy,
                        security_config=TritonSecurityConfig(restricted_endpoints=list(RESTRICTED)))  # fmt: skip
        self._triton = triton
        cancel_dir = Path(workspace.path) / "siliconlab-cancelled"
        cancel_dir.mkdir(exist_ok=True)
        try:
            for binding in self.bindings:
                self._bind(triton, binding)
                customize_model_store(Path(workspace.model_store_path) / binding.name, binding, cancel_dir)
                if binding.decoupled:
                    binding.infer.cancel_dir = cancel_dir
            triton.run()
        except Exception as exc:
            self.stop()
            raise SiliconlabError(f"the Triton server did not start: {exc} (its log: {self.log_file})") from None
        # PyTriton's shutdown calls gc.collect() once per model; over the heap of torch + transformers that costs
        # seconds on a busy 2-core machine. Everything alive now lives until exit, so freeze it out of collection.
        gc.freeze()

    def _triton_config(self) -> Any:
        from pytriton.triton import TritonConfig

        o = self.options
        return TritonConfig(http_address=o.host, http_port=o.http_port, grpc_address=o.host, grpc_port=o.grpc_port,
                            metrics_address=o.host, metrics_port=o.metrics_port, allow_metrics=True,
                            allow_gpu_metrics=Path("/dev/nvidiactl").exists(),  # else DCGM prints an NVML error
                            exit_timeout_secs=o.drain_timeout_s, log_file=self.log_file, log_verbose=o.log_verbose,
                            strict_readiness=True)  # fmt: skip

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
        """Drain: Triton stops taking requests, finishes those in flight (up to the drain timeout), exits."""
        if self._triton is None or self._stopped.is_set():
            return 0.0
        self._stopped.set()
        begin = time.perf_counter()
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
    if host in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def curl_line(server: Server, binding: Binding) -> str:
    """A ready-to-paste curl call for one model (text models; the ids variant takes token ids)."""
    if binding.decoupled:  # streams server-sent events as the reply is written
        body = '{"text":"What is the capital of France?","max_tokens":32}'
        return f"curl -sN {server.http_url}/v2/models/{binding.name}/generate_stream -d '{body}'"
    body = '{"inputs":[{"name":"text","shape":[1,1],"datatype":"BYTES","data":["I loved this film"]}]}'
    return f"curl -s {server.http_url}/v2/models/{binding.name}/infer -d '{body}'"
