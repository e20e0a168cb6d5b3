"""Why does NNCF static int8 MiniLM fail its parity gate on one CPU and pass on another? Per parity text: pooled
cosine of the static int8 IR (all MatMuls int8, and FFN down-projections float) against the f32 IR, with the
float ops in bf16 and in f32, and how long one call takes (a changed kernel path shows in the time).

    python benchmarks/cpu/static_int8_probe.py [--threads 2]     # e.g. under ONEDNN_MAX_CPU_ISA=... to compare
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sweep", action="store_true", help="also cut one long text to 2..80 tokens")
    args = parser.parse_args()
    import openvino as ov

    from siliconlab.data import calibration_texts, parity_texts
    from siliconlab.models import resolve
    from siliconlab.text import encode
    from siliconlab.units.openvino.cpu import openvino_model
    from siliconlab.units.openvino.quantize import quantize_static

    model = resolve("minilm").load()
    source = openvino_model(model, Path(tempfile.mkdtemp()))
    texts = parity_texts()
    feeds = [encode(model.tokenizer, [t], model.max_length, warn=False) for t in texts]
    lengths = [int(m.sum()) for _, m in feeds]

    def pooled(ov_model, hint: str) -> tuple[np.ndarray, float]:
        config = {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": str(args.threads)}
        compiled = ov.Core().compile_model(ov_model, "CPU", config)
        request, out = compiled.create_infer_request(), compiled.outputs[-1]
        rows = [np.asarray(request.infer({"input_ids": i, "attention_mask": m})[out]).copy() for i, m in feeds]
        begin = time.perf_counter()
        for _ in range(20):
            request.infer({"input_ids": feeds[0][0], "attention_mask": feeds[0][1]})
        return np.concatenate(rows), (time.perf_counter() - begin) / 20 * 1e3

    reference, _ = pooled(source, "f32")
    print("tokens per parity text:", lengths)
    calibration = calibration_texts(64)
    for label, float_down in (("all MatMuls int8", False), ("FFN down float", True)):
        quantized = quantize_static(source, model, calibration, float_ffn_down=float_down)
        for hint in ("bf16", "f32"):
            got, ms = pooled(quantized, hint)
            cos = np.sum(got * reference, axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(reference, axis=1))
            print(f"{label:18s} float ops {hint:4s}: {ms:6.2f} ms/call; cosine per text", np.round(cos, 4).tolist())
        if args.sweep and not float_down:
            _sweep(ov, model, source, quantized, texts[-1], args.threads)


def _sweep(ov, model, source, quantized, text: str, threads: int) -> None:
    """One long text cut to every length from 2 to 80 tokens: a kernel path that breaks at some shapes shows as
    a dip at those lengths."""
    from siliconlab.text import encode

    ids, mask = encode(model.tokenizer, [text], model.max_length, warn=False)
    config = {"INFERENCE_PRECISION_HINT": "bf16", "INFERENCE_NUM_THREADS": str(threads)}
    ref = ov.Core().compile_model(source, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}).create_infer_request()
    got = ov.Core().compile_model(quantized, "CPU", config).create_infer_request()
    worst = []
    for length in range(2, 81):
        feed = {"input_ids": ids[:, :length], "attention_mask": mask[:, :length]}
        a, b = (np.asarray(r.infer(feed)[r.model_outputs[-1]]).ravel() for r in (ref, got))
        worst.append((round(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))), 4), length))
    print("length sweep (cosine, tokens), worst ten:", sorted(worst)[:10])


if __name__ == "__main__":
    main()
