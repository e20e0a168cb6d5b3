"""A conversation for the generative chatbot: OpenAI-style messages checked and laid out by the chat template.

The OpenAI API and the server send a whole conversation (system, user and assistant turns), not one message.
Each turn is checked like a single message (empty, invalid UTF-8); the prompt is the model's chat template
around all turns. A conversation longer than the context loses its oldest turns first (the system prompt and
the last message stay), then the oldest tokens of the last message, as a single message does.
"""

from __future__ import annotations

from typing import Any

from siliconlab.errors import UsageError
from siliconlab.text import check_text

ROLES = ("system", "user", "assistant")

Messages = list[dict[str, str]]


def is_conversation(value: Any) -> bool:
    """Whether `value` is a list of messages ({role, content} dicts) rather than one text."""
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(m, dict) for m in value)


def check_messages(messages: Any) -> Messages:
    """[{role, content}] with known roles, non-empty UTF-8 contents, and a user turn last."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise UsageError("messages must be a non-empty list of {role, content}")
    checked: Messages = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise UsageError(f"messages[{index}] must be an object with 'role' and 'content'")
        role = message.get("role")
        if role not in ROLES:
            raise UsageError(f"messages[{index}].role must be one of {', '.join(ROLES)}, got {role!r}")
        content = check_text(content_text(message.get("content")), f"messages[{index}].content")
        checked.append({"role": str(role), "content": content})
    if checked[-1]["role"] != "user":
        raise UsageError(f"the last message must be the user's, got a {checked[-1]['role']} message")
    return checked


def content_text(content: Any) -> Any:
    """OpenAI's content: a string, or a list of parts of which only text parts can be read here."""
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise UsageError("only text content parts ({type: text, text}) can be read by this model")
            texts.append(part["text"])
        return "\n".join(texts)
    return content


def layout_ids(tokenizer: Any, messages: Messages) -> list[int]:
    """Token ids of the conversation as the chat template lays it out (the assistant's turn opened); a model
    without a template gets the contents one per line."""
    if getattr(tokenizer, "chat_template", None):
        laid_out = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return list(tokenizer(laid_out, add_special_tokens=False)["input_ids"])
    return list(tokenizer("\n".join(m["content"] for m in messages))["input_ids"])


def fit(tokenizer: Any, messages: Messages, context: int, max_new_tokens: int) -> tuple[list[int], int]:
    """(prompt ids leaving `max_new_tokens` of the `context` for the reply, message tokens dropped): oldest turns
    first, then the last message's oldest tokens. UsageError when not one token of the last message fits.

    How many of the oldest turns go is found by bisection (a conversation laid out with fewer turns is never
    longer), so a long conversation costs O(log n) layouts instead of one per dropped turn: 1,600 messages took
    36.7 s one by one."""
    messages = [dict(m) for m in messages]
    budget = context - max_new_tokens
    ids = layout_ids(tokenizer, messages)
    dropped = 0
    if len(ids) > budget:
        earlier = [i for i, m in enumerate(messages[:-1]) if m["role"] != "system"]

        def without(count: int) -> Messages:
            gone = set(earlier[:count])
            return [m for i, m in enumerate(messages) if i not in gone]

        low, high = 1, len(earlier)  # the fewest turns to drop: somewhere in low..high, or all of them
        while low < high:
            middle = (low + high) // 2
            if len(layout_ids(tokenizer, without(middle))) <= budget:
                high = middle
            else:
                low = middle + 1
        if earlier:
            dropped = sum(len(tokenizer(messages[i]["content"], add_special_tokens=False)["input_ids"])
                          for i in earlier[:low])  # fmt: skip
            messages = without(low)
            ids = layout_ids(tokenizer, messages)
    while len(ids) > budget:
        body = tokenizer(messages[-1]["content"], add_special_tokens=False)["input_ids"]
        cut = len(ids) - budget + 1
        if cut >= len(body):
            raise UsageError(f"max_new_tokens={max_new_tokens} leaves no room for the message in the context "
                             f"of {context} tokens")  # fmt: skip
        dropped += cut
        messages[-1]["content"] = tokenizer.decode(body[cut:])
        ids = layout_ids(tokenizer, messages)
    return ids, dropped
