"""Triton kernels of the fastbert encoder: shared launch helpers, small-M GEMMs, one-tile attention."""
