"""The generative chatbot behind Triton: a decoupled model that streams the reply, one response per piece.

Triton's decoupled transaction policy lets a model send any number of responses to one request; PyTriton 0.7
binds it with `ModelConfig(decoupled=True)` and an (async) generator callable. Clients stream over gRPC
(`stream_infer`) or HTTP (`POST /v2/models/<m>/generate_stream`, server-sent events). Every response carries
`text` (the new piece of the reply); the last one carries `stats` instead (JSON: tokens, TTFT, tokens/s,
prompt tokens, truncation, why it stopped), so a client knows the stream ended without Triton's empty final
response (which tritonclient's asyncio stream cannot ask for).

A client that leaves must stop generation. Triton marks its request cancelled (gRPC detects a closed or
cancelled stream); PyTriton does not pass that on to the callable, so the model file in PyTriton's model store
gets a patch (`STREAM_PATCH`): it tags every request with a key (a request parameter) and, while the request's
responses flow, checks `request.is_cancelled()`; a cancelled request's key becomes a file in a folder of the
workspace that the callable checks before every piece. The callable then closes the pipeline's stream, which
stops the decoder at the next token and releases it.

A caller in this process (the OpenAI front) can stop a request without cancelling its gRPC stream: it sends
its own key (`caller_key()`) as the request parameter and touches that file (`stop_by_key`). That matters
because the tritonserver PyTriton 0.7 ships never finishes a gRPC stream cancelled just after its final
response (it waits for a cancellation callback that does not come), and the model then holds Triton's drain
for its whole timeout; a caller that stops by key and reads the stream to its end never cancels.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np

from siliconlab.errors import SiliconlabError
from siliconlab.log import log
from siliconlab.serve.binding import NO_KEY, BadRequest, Binding, Request, Spec, error_response, key_given

#: The request parameter the model file's patch sets to the request's cancellation key.
STREAM_KEY = "siliconlab_stream_key"
#: Where a stream's error says the model failed (not the request): the OpenAI front answers those with a 500.
FAILED = "failed on this request"
#: A conversation sent to the streaming model straight over KServe: at most this many bytes (as JSON) and the
#: server's messages limit (config.MAX_CHAT_MESSAGES); the OpenAI front checks its own --max-chat-messages first.
MAX_MESSAGES_BYTES = 1024 * 1024

STREAM_INPUTS = [
    Spec("text", bytes, (1,), optional=True),
    Spec("messages", bytes, (1,), optional=True),
    Spec("max_tokens", np.int64, (1,), optional=True),  # int64: 2^40 is named as sent, not wrapped to 0
]
STREAM_OUTPUTS = [Spec("text", bytes, (1,)), Spec("stats", bytes, (1,))]


def check_stream_request(request: Request) -> tuple[Any, int | None]:
    """(a message or a conversation, max_tokens or None) from the request's inputs."""
    messages, text, max_tokens = request.get("messages"), request.get("text"), request.get("max_tokens")
    if (messages is None) == (text is None):
        raise BadRequest("give exactly one of the inputs 'text' (one message) and 'messages' (JSON conversation)")
    chosen = messages if messages is not None else text
    assert chosen is not None  # exactly one of them was given (checked above)
    if chosen.size != 1:
        raise BadRequest(f"input '{'messages' if messages is not None else 'text'}' must hold one element, "
                         f"got {chosen.size}")  # fmt: skip
    value = chosen.reshape(-1)[0]
    if len(bytes(value)) > MAX_MESSAGES_BYTES:
        raise BadRequest(f"the conversation is over {MAX_MESSAGES_BYTES} bytes")
    if messages is not None:
        from siliconlab.serve.config import MAX_CHAT_MESSAGES

        try:
            value = json.loads(bytes(value).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadRequest(f"input 'messages' is not JSON in UTF-8 ({exc})") from None
        if not isinstance(value, list) or not value:
            raise BadRequest("input 'messages' must be a non-empty JSON list of {role, content}")
        if len(value) > MAX_CHAT_MESSAGES:
            raise BadRequest(f"input 'messages' holds {len(value)} messages; at most {MAX_CHAT_MESSAGES}")
    limit = None
    if max_tokens is not None:
        if max_tokens.size != 1:
            raise BadRequest(f"input 'max_tokens' must hold one integer, got {max_tokens.size}")
        limit = int(max_tokens.reshape(-1)[0])
    return value, limit


class StreamInfer:
    """The decoupled callable: one request in, the reply's pieces out, then the figures."""

    def __init__(self, name: str, bot: Any):
        self.name = name
        self.bot = bot
        #: set by the server once its workspace exists (server.py); None: cancellation is not watched
        self.cancel_dir: Path | None = None
        #: the server's API keys (set by Server.start): checked here too, see models.key_given
        self.keys: tuple[str, ...] = ()
        self._lock: asyncio.Lock | None = None

    async def __call__(self, requests: list[Any]):  # noqa: ANN204 - an async generator of response lists
        for request in requests:  # Triton sends a decoupled model without batching one request per call
            async for response in self._one(request):
                yield [response]

    async def _one(self, request: Any):  # noqa: ANN202
        marker = self._marker(request)
        if not key_given(request, self.keys):
            yield error_response(NO_KEY)
            return
        try:
            value, max_tokens = check_stream_request(dict(request.items()))
        except BadRequest as exc:
            yield error_response(str(exc))
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one reply at a time: the decoder is one, and `last_stats` is the bot's
            try:
                async for response in self._generate(value, max_tokens, marker):
                    yield response
            finally:
                if marker is not None:
                    marker.unlink(missing_ok=True)

    async def _generate(self, value: Any, max_tokens: int | None, marker: Path | None):  # noqa: ANN202
        from siliconlab.errors import UsageError

        if marker is not None and marker.exists():  # left while waiting for its turn
            log.info("model %s: a client left before its reply started", self.name)
            return
        try:
            pieces = await asyncio.to_thread(self.bot.stream, value, max_tokens)
        except UsageError as exc:
            yield error_response(str(exc))
            return
        try:
            while True:
                if marker is not None and marker.exists():
                    log.info("model %s: the client left; generation stopped", self.name)
                    return
                piece = await asyncio.to_thread(next, pieces, None)
                if piece is None:
                    break
                yield {"text": np.array([piece.encode("utf-8")], dtype=object)}
        except SiliconlabError as exc:
            log.exception("model %s failed while generating", self.name)
            yield error_response(f"model '{self.name}' {FAILED}: {exc}", "INTERNAL")
            return
        finally:
            await asyncio.to_thread(pieces.close)  # stops the decoder at its next token and releases it
        stats = {k: _plain(v) for k, v in self.bot.last_stats.items() if k != "reply"}
        yield {"stats": np.array([json.dumps(stats).encode()], dtype=object)}

    def _marker(self, request: Any) -> Path | None:
        key = (getattr(request, "parameters", None) or {}).get(STREAM_KEY)
        if self.cancel_dir is None or not isinstance(key, str) or "/" in key:
            return None
        return self.cancel_dir / key


def caller_key() -> str:
    """A key a caller may send as the `STREAM_KEY` parameter (the model file's patch accepts only this form)."""
    import uuid

    return f"caller-{uuid.uuid4().hex}"


def stop_by_key(cancel_dir: Path, key: str) -> None:
    """Ask the streaming callable to stop the request sent with `key` (it checks before every piece)."""
    (cancel_dir / key).touch()


def _plain(value: Any) -> Any:
    """JSON for the stats: NaN (no decode step yet) becomes null."""
    if isinstance(value, float) and value != value:
        return None
    return value


def stream_binding(name: str, bot: Any) -> Binding:
    """`<name>`: a decoupled model streaming the bot's reply (see the module docstring for the protocol)."""
    limit = bot.check_max_new_tokens(None)
    from siliconlab.tasks.generate import MAX_NEW_TOKENS_LIMIT

    largest = min(MAX_NEW_TOKENS_LIMIT, bot.loaded.max_length - 1)
    params = {"max_length": str(bot.loaded.max_length), "default_max_tokens": str(limit),
              "max_tokens_limit": str(largest), "generative": "true"}  # fmt: skip
    return Binding(name, STREAM_INPUTS, STREAM_OUTPUTS, StreamInfer(name, bot), params, bot.model, bot.unit,
                   "generation", decoupled=True)  # fmt: skip


#: Appended to a decoupled model's model file (after ERROR_PATCH); `{cancel_dir}` and `{key}` are filled in.
STREAM_PATCH = '''

# --- added by siliconlab.serve: a stream whose client left stops its generation ----------------------------
import itertools as _siliconlab_itertools
import re as _siliconlab_re

_siliconlab_cancel_dir = pathlib.Path({cancel_dir!r})
_siliconlab_keys = {{}}
_siliconlab_counter = _siliconlab_itertools.count()
_siliconlab_caller_key = _siliconlab_re.compile(r"caller-[0-9a-f]{{32}}")
_siliconlab_original_wrap_request = TritonRequestsServer._wrap_request


def _siliconlab_wrap_request(self, triton_request, inputs, span=None):
    request = _siliconlab_original_wrap_request(self, triton_request, inputs, span)
    given = (request.parameters or {{}}).get({key!r})
    if isinstance(given, str) and _siliconlab_caller_key.fullmatch(given):
        key = given  # the caller (the OpenAI front) may stop this request by this key, without a gRPC cancel
    else:
        key = f"{{os.getpid()}}-{{next(_siliconlab_counter)}}"
    _siliconlab_keys[id(triton_request)] = key
    request.parameters = {{**(request.parameters or {{}}), {key!r}: key}}
    return request


TritonRequestsServer._wrap_request = _siliconlab_wrap_request


def _siliconlab_check_cancelled(triton_requests, told):
    for request in triton_requests:
        key = _siliconlab_keys.get(id(request))
        if key is None or key in told:
            continue
        try:
            cancelled = request.is_cancelled()
        except Exception:
            continue
        if cancelled:
            told.add(key)
            (_siliconlab_cancel_dir / key).touch()


def _siliconlab_send(sender, response, flags):
    try:
        sender.send(response, flags)
    except Exception as exc:  # a stream closed under us must not leave the request unfinished
        LOGGER.warning(f"could not send a response: {{exc}}")


class _SiliconlabDecoupledHandler(DecoupledResponsesHandler):
    """PyTriton 0.7's handler, plus: cancellation checks while the request lives, sends that cannot raise."""

    async def handle_responses(self, scope, responses_queue, responses_future):
        requests_id = scope["requests_id"]
        loop = asyncio.get_running_loop()
        triton_requests = self._requests_map[requests_id]
        triton_senders = [request.get_response_sender() for request in triton_requests]
        told = set()
        eos = False
        while not eos:
            try:
                item = await asyncio.wait_for(responses_queue.get(), 0.1)
            except asyncio.TimeoutError:
                _siliconlab_check_cancelled(triton_requests, told)
                continue
            flags, responses_payload = item
            eos = flags & PyTritonResponseFlags.EOS
            error = flags & PyTritonResponseFlags.ERROR
            try:
                _siliconlab_check_cancelled(triton_requests, told)
                if error:
                    message = responses_payload.decode("utf-8")
                    triton_responses = [pb_utils.InferenceResponse(error=pb_utils.TritonError(message))
                                        for _ in triton_senders]
                else:
                    responses = self._serializer_deserializer.deserialize_responses(responses_payload)
                    triton_responses = [
                        _wrap_response(response, request.requested_output_names(), self._model_outputs_dict)
                        for request, response in zip(triton_requests, responses)
                    ]
                triton_flags = 0
                if eos:
                    triton_flags = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
                    triton_responses = triton_responses or [None] * len(triton_senders)
                await asyncio.gather(*[loop.run_in_executor(None, _siliconlab_send, sender, response, triton_flags)
                                       for sender, response in zip(triton_senders, triton_responses)])
            except Exception as exc:
                LOGGER.warning(f"response handling failed: {{exc}}")
                if eos:
                    await asyncio.gather(*[loop.run_in_executor(None, _siliconlab_send, sender, None,
                                                                pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
                                           for sender in triton_senders])
            finally:
                if not error:
                    self._serializer_deserializer.free_responses_resources(responses_payload)
                responses_queue.task_done()
        for request in triton_requests:
            _siliconlab_keys.pop(id(request), None)
        self._requests_map.pop(requests_id)
        responses_future.set_result(None)


DecoupledResponsesHandler = _SiliconlabDecoupledHandler
'''


def stream_patch(cancel_dir: Path) -> str:
    return STREAM_PATCH.format(cancel_dir=str(cancel_dir), key=STREAM_KEY)
