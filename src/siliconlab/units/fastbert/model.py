"""FastBert: a BERT encoder rebuilt for inference on NVIDIA GPUs from a Hugging Face BertModel's weights.

Per layer: one fused Q/K/V GEMM (bias in the cuBLASLt epilogue), SDPA attention (flash when there is no
padding, memory-efficient with an additive mask otherwise), the output GEMM, bias+residual+LayerNorm in one
kernel, FFN1 GEMM with bias+GELU in its epilogue, FFN2 GEMM, bias+residual+LayerNorm in one kernel — 7
launches, against ~15 for the Hugging Face module. The last LayerNorm writes fp32 token states, then pooling.

Small calls (batch 1, benchmarks/gpu/NOTES.md) swap in Triton GEMMs with narrow tiles and split-K
(kernels/gemm.py) and a one-tile attention kernel (kernels/attention.py); on Hopper all Triton kernels use
programmatic dependent launch, so each starts while its predecessor runs.

`fp8=True` runs the four GEMMs per layer on e4m3 operands (per-output-channel weight scales, per-token
activation scales emitted by the LayerNorm/GELU kernels themselves), accumulating in fp32, bf16 elsewhere.

On the CPU (or without triton) the same forward runs through plain torch ops: that is what CPU tests check
against the Hugging Face model.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import torch
import torch.nn.functional as F

from siliconlab.models.base import HEADS
from siliconlab.models.wrapper import mean_pool_normalize
from siliconlab.ops import fp8 as fp8_math


class TorchOps:
    """Reference implementations of the fused stages (any device, any dtype)."""

    @staticmethod
    def _maybe_quant(y: torch.Tensor, dtype: torch.dtype, quant: bool):
        out = y.to(dtype)
        if not quant:
            return out, None, None
        q, s = fp8_math.quantize_rows(y)
        return out, q, s

    def embed_ln(self, ids, word, pos_type, w, b, eps, seq, dtype, quant=False):
        positions = torch.arange(ids.numel(), device=ids.device) % seq
        x = word[ids.reshape(-1)].float() + pos_type[positions].float()
        return self._maybe_quant(F.layer_norm(x, (x.shape[-1],), w.float(), b.float(), eps), dtype, quant)

    def add_ln(self, x, bias, residual, w, b, eps, dtype, quant=False):
        x = x.float().sum(0) if x.dim() == 3 else x.float()  # [splits, M, N] split-K partials
        y = x + bias.float() + residual.float()
        return self._maybe_quant(F.layer_norm(y, (y.shape[-1],), w.float(), b.float(), eps), dtype, quant)

    def bias_gelu(self, x, bias, dtype, quant=False):
        return self._maybe_quant(F.gelu(x.float() + bias.float()), dtype, quant)

    def quant_rows(self, x):
        return fp8_math.quantize_rows(x)

    def pool(self, states, mask):
        return mean_pool_normalize(states.float(), mask)


def small_gemm(device: torch.device) -> Any:
    """The Triton small-M GEMMs (kernels/gemm.py) on a CUDA device with triton, else None (cuBLAS/CPU torch)."""
    if device.type == "cuda" and importlib.util.find_spec("triton") is not None:
        from siliconlab.units.fastbert.kernels import gemm as cuda_gemm

        return cuda_gemm.for_device(device)
    return None


class _NoShortAttention:
    @staticmethod
    def supports(seq: int, head_dim: int) -> bool:
        return False


def short_attention_kernels(device: torch.device) -> Any:
    """cuda_attention on a CUDA device with triton; elsewhere an object that supports nothing."""
    if device.type == "cuda" and importlib.util.find_spec("triton") is not None:
        from siliconlab.units.fastbert.kernels import attention as cuda_attention

        return cuda_attention
    return _NoShortAttention()


def kernel_ops(device: torch.device) -> Any:
    """The Triton kernels on a CUDA device with triton (PDL on from Hopper and CUDA 12.3), else plain torch ops."""
    if device.type == "cuda" and importlib.util.find_spec("triton") is not None:
        from siliconlab.units.fastbert.kernels import common as cuda_kernels

        cuda_version = tuple(int(p) for p in (torch.version.cuda or "0.0").split(".")[:2])
        cuda_kernels.PDL = torch.cuda.get_device_capability(device) >= (9, 0) and cuda_version >= (12, 3)
        return cuda_kernels
    return TorchOps()


def check_supported(config: Any) -> None:
    problems = []
    if getattr(config, "model_type", None) != "bert":
        problems.append(f"model_type is {getattr(config, 'model_type', None)!r}, not 'bert'")
    if getattr(config, "hidden_act", "gelu") != "gelu":
        problems.append(f"hidden_act is {config.hidden_act!r}, not 'gelu'")
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        problems.append(f"position_embedding_type is {config.position_embedding_type!r}")
    if problems:
        raise ValueError("FastBert supports BERT encoders only: " + "; ".join(problems))


class Dense:
    """A Linear layer as the GEMM wants it: bf16/fp16 weight [N, K], or fp8 weight + per-row scales."""

    def __init__(self, linear: torch.nn.Linear, dtype: torch.dtype, device: torch.device, fp8: bool):
        weight = linear.weight.detach().to(device=device, dtype=torch.float32)
        self.bias = linear.bias.detach().to(device=device, dtype=dtype)
        self.fp8 = fp8
        self.scale: torch.Tensor | None = None
        if fp8:
            self.weight, self.scale = fp8_math.quantize_rows(weight)
        else:
            self.weight = weight.to(dtype)

    def __call__(self, x: torch.Tensor, x_q=None, x_scale=None, bias: bool = False) -> torch.Tensor:
        b = self.bias if bias else None
        if self.fp8:
            assert self.scale is not None  # quantize_rows gave it with the fp8 weight
            return fp8_math.scaled_linear(x_q, x_scale, self.weight, self.scale, bias=b, out_dtype=x.dtype)
        return F.linear(x, self.weight, b)

    def gelu(self, x: torch.Tensor) -> torch.Tensor:
        """x W^T + b through GELU in the GEMM's own epilogue (cuBLASLt, on CUDA; tanh-form GELU there)."""
        return torch._addmm_activation(self.bias, x, self.weight.t(), use_gelu=True)

    def split_k(self, x: torch.Tensor, splits: int) -> torch.Tensor:
        """[splits, M, N] partial products over K-slices (no bias): splits x more thread blocks for small M;
        the consumer (add_ln) sums them. Strided views, no copies."""
        m, k = x.shape
        xs = x.view(m, splits, k // splits).transpose(0, 1)
        ws = self.weight.view(-1, splits, k // splits).permute(1, 2, 0)
        return torch.bmm(xs, ws)


class Layer:
    def __init__(self, hf_layer: Any, dtype: torch.dtype, device: torch.device, fp8: bool, eps: float):
        attn = hf_layer.attention
        qkv = torch.nn.Linear(attn.self.query.in_features, 3 * attn.self.query.out_features)
        with torch.no_grad():
            qkv.weight.copy_(torch.cat([attn.self.query.weight, attn.self.key.weight, attn.self.value.weight]))
            qkv.bias.copy_(torch.cat([attn.self.query.bias, attn.self.key.bias, attn.self.value.bias]))
        self.qkv = Dense(qkv, dtype, device, fp8)
        self.out = Dense(attn.output.dense, dtype, device, fp8)
        self.ffn1 = Dense(hf_layer.intermediate.dense, dtype, device, fp8)
        self.ffn2 = Dense(hf_layer.output.dense, dtype, device, fp8)

        def ln(module: torch.nn.LayerNorm) -> tuple[torch.Tensor, torch.Tensor]:
            return module.weight.detach().float().to(device), module.bias.detach().float().to(device)

        self.ln1, self.ln2 = ln(attn.output.LayerNorm), ln(hf_layer.output.LayerNorm)
        self.eps = eps


class FastBert:
    """Callable (input_ids [B, S], attention_mask [B, S], dense: bool) -> the task's outputs, fp32."""

    #: Small-batch tuning (measured on H100, benchmarks/gpu/NOTES.md): for M = batch*seq tokens <= SMALL_M the
    #: GEMMs run as Triton kernels with narrow tiles (kernels/gemm.py), the two output projections as split-K whose
    #: partial sums the LayerNorm kernel adds; without triton, the cuBLAS split-K below.
    SMALL_M = 512
    TRITON_MAX_M = 128
    SPLIT_OUT = 1
    SPLIT_FFN2 = 4

    def __init__(
        self,
        hf_model: Any,
        task: str,
        dtype: torch.dtype,
        device: str | torch.device,
        fp8: bool = False,
        gelu_epilogue: bool = True,
        triton_gemm: bool = True,
        triton_attention: bool = True,
    ):
        self.task = task
        self.classifier = HEADS[task].classifier
        bert = hf_model.bert if self.classifier else hf_model
        config = bert.config
        check_supported(config)
        self.device = torch.device(device)
        self.dtype = torch.bfloat16 if fp8 else dtype
        self.fp8 = fp8
        self.heads = int(config.num_attention_heads)
        self.hidden = int(config.hidden_size)
        self.max_positions = int(config.max_position_embeddings)
        self.pad_id = int(getattr(config, "pad_token_id", 0) or 0)
        self.ops = kernel_ops(self.device)
        dims = (config.hidden_size, config.intermediate_size)
        usable = triton_gemm and not fp8 and all(d % 16 == 0 for d in dims)
        self.gemm = small_gemm(self.device) if usable else None
        self.short_attention: Any = short_attention_kernels(self.device) if triton_attention else _NoShortAttention()
        # cuBLASLt's GELU epilogue is the tanh form (|diff| <= 5e-4 vs erf, below fp16/bf16 rounding of the
        # activations); it saves one kernel and one pass over the FFN activations per layer. CUDA only.
        self.gelu_epilogue = gelu_epilogue and not fp8 and self.device.type == "cuda"
        emb = bert.embeddings
        eps = float(config.layer_norm_eps)
        with torch.no_grad():
            self.word = emb.word_embeddings.weight.detach().to(self.device, self.dtype)
            pos_type = emb.position_embeddings.weight.float() + emb.token_type_embeddings.weight[0].float()
            self.pos_type = pos_type.to(self.device, self.dtype)
        self.emb_ln = (
            emb.LayerNorm.weight.detach().float().to(self.device),
            emb.LayerNorm.bias.detach().float().to(self.device),
        )
        self.eps = eps
        self.layers = [Layer(layer, self.dtype, self.device, fp8, eps) for layer in bert.encoder.layer]
        self.head: tuple[torch.Tensor, ...] = ()
        #: "cls": HF's pooler + classifier; "mean": siliconlab's head on the normalised mean (models/heads.py).
        self.pooling = getattr(hf_model, "pooling", "cls") if self.classifier else None
        if self.classifier:
            pooler, classifier = (bert.pooler.dense if self.pooling == "cls" else None), hf_model.classifier
            tensors = (pooler.weight, pooler.bias) if pooler is not None else ()
            self.head = tuple(
                t.detach().float().to(self.device) for t in (*tensors, classifier.weight, classifier.bias)
            )

    def _project(self, dense: Dense, x, x_q, x_scale, splits: int) -> torch.Tensor:
        """A projection whose bias the following add_ln adds; split-K for small M on the fp16/bf16 path."""
        if not self.fp8 and splits > 1 and x.shape[0] <= self.SMALL_M and x.shape[1] % splits == 0:
            return dense.split_k(x, splits)
        return dense(x, x_q, x_scale)

    def attention(self, qkv: torch.Tensor, batch: int, seq: int, mask_bias: torch.Tensor | None) -> torch.Tensor:
        q, k, v = qkv.view(batch, seq, 3, self.heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask_bias)
        return out.transpose(1, 2).reshape(batch * seq, self.hidden)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, dense: bool = False):
        batch, seq = input_ids.shape
        ops, dtype, quant = self.ops, self.dtype, self.fp8
        # Triton attention for short sequences at small batch (measured: 0.32 vs 0.37 ms B1 S128); at B64 cuDNN's
        # flash kernel is faster (3.12 vs 3.27 ms), so large batches keep SDPA.
        short_attention = batch * seq <= self.SMALL_M and self.short_attention.supports(seq, self.hidden // self.heads)
        mask_bias = None
        if not dense and not short_attention:
            mask_bias = (1.0 - attention_mask.to(dtype))[:, None, None, :] * torch.finfo(dtype).min
        w, b = self.emb_ln
        h, hq, hs = ops.embed_ln(input_ids, self.word, self.pos_type, w, b, self.eps, seq, dtype, quant)
        last = len(self.layers) - 1
        gemm = self.gemm if self.gemm is not None and batch * seq <= self.TRITON_MAX_M else None
        for index, layer in enumerate(self.layers):
            if gemm is not None:
                qkv = gemm.linear(h, layer.qkv.weight, layer.qkv.bias)
            else:
                qkv = layer.qkv(h, hq, hs, bias=True)
            if short_attention:
                ctx = self.short_attention.attention(qkv, attention_mask, batch, seq, self.heads)
            else:
                ctx = self.attention(qkv, batch, seq, mask_bias)
            cq, cs = ops.quant_rows(ctx) if quant else (None, None)
            w, b = layer.ln1
            if gemm is not None:
                o = gemm.linear(ctx, layer.out.weight, split=True)
            else:
                o = self._project(layer.out, ctx, cq, cs, self.SPLIT_OUT)
            h, hq, hs = ops.add_ln(o, layer.out.bias, h, w, b, layer.eps, dtype, quant)
            if gemm is not None:
                f, fq, fs = gemm.linear(h, layer.ffn1.weight, layer.ffn1.bias, gelu=True), None, None
            elif self.gelu_epilogue:
                f, fq, fs = layer.ffn1.gelu(h), None, None
            else:
                f, fq, fs = ops.bias_gelu(layer.ffn1(h, hq, hs), layer.ffn1.bias, dtype, quant)
            w, b = layer.ln2
            out_dtype = torch.float32 if index == last else dtype
            if gemm is not None:
                o = gemm.linear(f, layer.ffn2.weight, split=True)
            else:
                o = self._project(layer.ffn2, f, fq, fs, self.SPLIT_FFN2)
            h, hq, hs = ops.add_ln(o, layer.ffn2.bias, h, w, b, layer.eps, out_dtype, quant and index != last)
        states = h.view(batch, seq, self.hidden)
        if self.pooling == "mean":
            cw, cb = self.head
            return (F.linear(ops.pool(states, attention_mask), cw, cb),)
        if self.classifier:
            pw, pb, cw, cb = self.head
            pooled = torch.tanh(F.linear(states[:, 0], pw, pb))
            return (F.linear(pooled, cw, cb),)
        return states, ops.pool(states, attention_mask)
