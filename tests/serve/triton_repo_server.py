"""Run a Triton model repository in PyTriton's bundled tritonserver (tests only).

That binary ships only the Python backend, so `python_stand_in()` turns an exported onnxruntime-backend model
into a Python-backend model running the *same* model.onnx with the onnxruntime package, keeping its name,
inputs and outputs: the tokenizer, post-processor and ensemble wiring then run for real, end to end.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sysconfig
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

STAND_IN = """
import json
import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.outputs = [o["name"] for o in config["output"]]
        path = f"{args['model_repository']}/{args['model_version']}/model.onnx"
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def execute(self, requests):
        responses = []
        for request in requests:
            names = ("input_ids", "attention_mask")
            feed = {n: pb_utils.get_input_tensor_by_name(request, n).as_numpy() for n in names}
            out = self.session.run(self.outputs, feed)
            tensors = [pb_utils.Tensor(n, np.ascontiguousarray(v)) for n, v in zip(self.outputs, out)]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses
"""


def python_stand_in(model_dir: Path) -> None:
    """Replace an onnxruntime-backend model by a Python-backend one with the same signature and graph."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    config = text_format.Parse((model_dir / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    config.platform = ""
    config.backend = "python"
    config.ClearField("parameters")
    (model_dir / "config.pbtxt").write_text(text_format.MessageToString(config))
    (model_dir / "1" / "model.py").write_text(STAND_IN)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def tritonserver(repository: Path, work: Path, timeout: float = 60.0) -> Iterator[str]:
    """The bundled tritonserver on loopback ports serving `repository`; yields its HTTP URL."""
    import pytriton

    dist = Path(pytriton.__file__).parent / "tritonserver"
    server = work / "tritonserver"
    shutil.copytree(dist, server, ignore=shutil.ignore_patterns("python_backend_stubs"))
    version = f"{os.sys.version_info.major}.{os.sys.version_info.minor}"
    stub = dist / "python_backend_stubs" / version / "triton_python_backend_stub"
    shutil.copy(stub, server / "backends" / "python" / "triton_python_backend_stub")
    libs = Path(pytriton.__file__).parent.parent / "nvidia_pytriton.libs"
    env = dict(os.environ)
    # The stub links libpython: under pyenv that library is in LIBDIR, not on the loader's default path.
    env["LD_LIBRARY_PATH"] = ":".join(
        filter(None, [sysconfig.get_config_var("LIBDIR"), str(libs), env.get("LD_LIBRARY_PATH")])
    )
    env["PATH"] = f"{Path(os.sys.executable).parent}:{env['PATH']}"
    http, grpc, metrics = free_port(), free_port(), free_port()
    command = [
        str(server / "bin" / "tritonserver"), f"--model-repository={repository}",
        f"--backend-directory={server / 'backends'}", f"--http-port={http}", f"--grpc-port={grpc}",
        f"--metrics-port={metrics}", "--http-address=127.0.0.1", "--grpc-address=127.0.0.1",
        "--metrics-address=127.0.0.1", "--exit-timeout-secs=5",
    ]  # fmt: skip
    log = (work / "tritonserver.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"tritonserver exited: {(work / 'tritonserver.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"tritonserver not ready: {(work / 'tritonserver.log').read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
