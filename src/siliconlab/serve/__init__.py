"""Serving: the task pipelines behind NVIDIA Triton (PyTriton), plus a thin OpenAI-compatible front.

`config.py` the options, `models.py` the per-model inference callables, `server.py` binding, startup and drain,
`openai_front.py` `/v1/embeddings` forwarded to Triton, `auth.py` API keys, `gateway.py` the authenticating gateway in
front of Triton's ports, `front_guard.py` the OpenAI front's key and size checks. Heavy imports (pytriton,
tritonclient, fastapi) happen inside the functions that need them.
"""
