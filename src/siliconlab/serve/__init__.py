"""Serving: the embedded Triton server, the Triton model-repository export and the load test."""
