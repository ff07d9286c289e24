"""Prompt formats: exactly how one model sees a prompt, the same in ARM training and in decoding.

A model sees a prompt through one ``PromptFormat``:

- ``chat_template``: the tokenizer's own chat template (a text prompt becomes one user message;
  ``system_prompt``, when set, is put first unless the chat has a system message of its own);
- ``template``: a text format with ``{prompt}``, e.g. ``"\\n\\nHuman: {prompt}\\n\\nAssistant:"``;
- neither: a text prompt as it is.

Chats (lists of ``{"role", "content"}``) are rendered once, never twice: through the chat template,
or turn by turn in the template's own shape (``render_turns``). Without a template a chat is an
HH transcript (``HH_TEMPLATE``). System messages stay system messages (the chat template's
system turn; with a text template, a preamble before the first turn).

``train-arm`` records the format it trained with (``training_config.json``,
``model_set_entry.yaml``) and decoding feeds each model exactly that, so an ARM is never scored on
a prompt format it did not learn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from transformers import PreTrainedTokenizerBase

#: Anthropic HH-RLHF's transcript format, also the format of a chat when no other is given.
HH_TEMPLATE = "\n\nHuman: {prompt}\n\nAssistant:"

class FormatError(ValueError):
    """A prompt cannot be rendered in a model's format (the message says why)."""


@dataclass(frozen=True)
class PromptFormat:
    """How a model sees a prompt. At most one of ``template`` and ``chat_template``."""

    template: str | None = None
    chat_template: bool = False
    system_prompt: str | None = None

    def __post_init__(self) -> None:
        if self.template is not None and "{prompt}" not in self.template:
            raise FormatError("a template must contain '{prompt}'")
        if self.template is not None and self.chat_template:
            raise FormatError("give either a template or chat_template, not both (a chat would be wrapped twice)")
        if self.system_prompt is not None and not self.chat_template:
            raise FormatError("system_prompt needs chat_template (a text template has no system turn)")

    @property
    def response_starts_with_space(self) -> bool | None:
        """Whether a response follows the prompt after a space: True after a template whose
        assistant cue ends without white space (``"Assistant:"``, as in HH-RLHF); False after a
        chat template or a cue that ends in a newline or space; None for a plain text prompt,
        whose responses are taken as they come."""
        if self.chat_template:
            return False
        if not self.template:
            return None
        cue = self.template.split("{prompt}", 1)[1]
        return bool(cue) and not cue[-1].isspace()

    def render(self, prompt: Any, tokenizer: PreTrainedTokenizerBase) -> str:
        """The prompt text this model is fed (before tokenization)."""
        if self.chat_template:
            if not getattr(tokenizer, "chat_template", None):
                raise FormatError("chat_template is set but the tokenizer has no chat template")
            messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
            if self.system_prompt is not None and not (messages and messages[0]["role"] == "system"):
                messages.insert(0, {"role": "system", "content": self.system_prompt})
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if isinstance(prompt, str):
            return self.template.replace("{prompt}", prompt) if self.template else prompt
        return render_turns(prompt, self.template or HH_TEMPLATE)

    def encode(self, prompt: Any, tokenizer: PreTrainedTokenizerBase) -> list[int]:
        """Token ids of ``render``. A chat template writes its own special tokens; a text format
        gets whatever the tokenizer adds (e.g. BOS)."""
        text = self.render(prompt, tokenizer)
        return list(tokenizer(text, add_special_tokens=not self.chat_template)["input_ids"])

    def normalise_response(self, text: str) -> str:
        """A response as it follows this format's prompt: one leading space after a cue such as
        ``"Assistant:"``, none after a chat template or a cue that ends in white space. HH-RLHF
        replies begin with a space; under a chat template they must not, or the ARM learns a
        first token that a chat base never writes."""
        space = self.response_starts_with_space
        if space is None:
            return text
        body = text.lstrip()
        return " " + body if space else body

    def to_dict(self) -> dict[str, Any]:
        """Only the keys that are set (the form a model-set file and ``training_config.json`` use)."""
        out: dict[str, Any] = {}
        if self.template is not None:
            out["template"] = self.template
        if self.chat_template:
            out["chat_template"] = True
        if self.system_prompt is not None:
            out["system_prompt"] = self.system_prompt
        return out


def render_turns(messages: Sequence[dict[str, str]], template: str) -> str:
    """A chat in the shape of a one-turn text template, ending with an open assistant turn.

    Each user message is put through ``template``; an assistant reply follows its cue (after a
    space when the cue ends without white space) and is followed by a newline unless the template
    itself starts with white space (HH's ``"\\n\\nHuman: "`` does). A system message is a preamble
    before the first turn. With ``HH_TEMPLATE`` this reproduces an HH-RLHF transcript exactly.

    Raises:
        FormatError: the chat is empty or does not end with a user message.
    """
    if not messages:
        raise FormatError("the chat has no messages")
    if messages[-1].get("role") != "user":
        raise FormatError("a chat prompt must end with a user message for the model to answer")
    cue = template.split("{prompt}", 1)[1]
    reply_sep = "" if (cue and cue[-1].isspace()) else " "
    turn_sep = "" if template[:1].isspace() else "\n"
    out = []
    for m in messages:
        role, content = m.get("role"), m.get("content", "")
        if role == "system":
            out.append(content + turn_sep)
        elif role == "assistant":
            out.append(reply_sep + content + turn_sep)
        else:
            out.append(template.replace("{prompt}", content))
    return "".join(out)
