"""Which part of a long review should MiniLM read? Accuracy of the committed sentiment head on the eval slice
with the review cut four ways: the first 256 or 512 tokens (what a tokenizer does by default) or its head and
tail (Sun et al., 2019, found head+tail best for IMDB with BERT). Texts that fit are embedded once.

    python benchmarks/tasks/sentiment_truncation.py [--limit 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def cut(ids: list[int], keep: int, mode: str) -> list[int]:
    """Token ids (without [CLS]/[SEP]) cut to `keep`: the head, or a quarter head + three quarters tail."""
    if len(ids) <= keep:
        return ids
    if mode == "head":
        return ids[:keep]
    head = keep // 4
    return ids[:head] + ids[len(ids) - (keep - head) :]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--unit", default="onnxruntime-cpu-fp32")
    args = parser.parse_args()

    from safetensors.numpy import load_file

    import siliconlab
    from siliconlab.data.tasks import split
    from siliconlab.models.task_models import HEADS_DIR

    test = split("sentiment", "test", limit=args.limit)
    pipe = siliconlab.load("minilm", unit=args.unit)
    tok, runner = pipe.loaded.tokenizer, pipe.loaded.runner
    head = load_file(str(HEADS_DIR / "sentiment.safetensors"))
    truth = (test["label"] == "positive").to_numpy().astype(int)
    bodies = tok(test["text"].tolist(), add_special_tokens=False)["input_ids"]
    print(
        f"{len(bodies)} texts; longer than 254 tokens: {sum(len(b) > 254 for b in bodies)}, "
        f"than 510: {sum(len(b) > 510 for b in bodies)}"
    )

    def embed(rows: list[list[int]]) -> np.ndarray:
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        out = np.zeros((len(rows), 384), dtype=np.float32)
        for start in range(0, len(order), 16):
            chunk = order[start : start + 16]
            width = max(len(rows[i]) for i in chunk) + 2
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for r, i in enumerate(chunk):
                seq = [tok.cls_token_id, *rows[i], tok.sep_token_id]
                ids[r, : len(seq)] = seq
                mask[r, : len(seq)] = 1
            out[chunk] = runner.run(ids, mask)["sentence_embedding"]
        return out

    results = []
    for keep, mode in ((254, "head"), (254, "head+tail"), (510, "head"), (510, "head+tail")):
        begin = time.perf_counter()
        x = embed([cut(b, keep, mode) for b in bodies])
        logits = x @ head["weight"].T + head["bias"]
        acc = float((logits.argmax(1) == truth).mean())
        results.append((keep + 2, mode, acc, time.perf_counter() - begin))
        print(f"max {keep + 2:4d} {mode:10s} accuracy {acc:.4f} ({results[-1][3]:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
