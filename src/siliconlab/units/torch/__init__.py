"""PyTorch units: the fp32 CPU baseline and the stock Hugging Face model on CUDA (fp32/fp16/bf16)."""
