"""Prompt files, one rule for the command line and the dashboard's uploads.

One prompt per non-empty line, in any of these forms:
- plain text: ``How do I bake bread?``
- a JSON string: ``"How do I bake bread?"`` (to keep leading spaces or write ``\\n``)
- a JSON object with ``prompt`` (or ``instruction``): ``{"prompt": "...", "id": 7}``
- a chat, as a JSON list of messages or an object whose ``prompt`` is one:
  ``[{"role": "user", "content": "..."}]``
A line that starts like a JSON object or list (``{`` or ``[``) but does not parse is an error,
never silently read as text; a line that starts with ``"`` but is not one JSON string is text
(``"Hello", she said`` is a prompt).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable


class PromptFileError(ValueError):
    """A prompt file that cannot be read; the message names the file and line."""


def parse_prompt_lines(lines: Iterable[str], source: str = "<text>") -> list[Any]:
    prompts: list[Any] = []
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        if line[0] not in '{["':
            prompts.append(line)
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            if line[0] == '"':
                prompts.append(line)
                continue
            raise PromptFileError(f"{source}:{n}: not valid JSON ({exc.msg}); write plain text lines or one JSON value per line") from None
        if isinstance(item, dict):
            item = item.get("prompt", item.get("instruction"))
        if isinstance(item, list) and not all(isinstance(m, dict) and "content" in m for m in item):
            item = None
        if not isinstance(item, (str, list)) or not item:
            raise PromptFileError(f"{source}:{n}: expected a string, an object with 'prompt', or a list of chat messages")
        prompts.append(item)
    return prompts


def read_prompt_file(path: str | Path) -> list[Any]:
    path = Path(path)
    if not path.is_file():
        raise PromptFileError(f"no such file: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PromptFileError(f"{path}: not UTF-8 text") from None
    return parse_prompt_lines(text.splitlines(), path.name)
