"""The rebuilt BERT encoder for NVIDIA GPUs (fused QKV, Triton kernels, CUDA graphs, FP8): model, units, kernels."""
