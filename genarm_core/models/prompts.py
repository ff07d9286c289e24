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


#: The longest prompt line read (characters): a prompt is a request, not a document, and a line far
#: longer than any context would only cost the server time to tokenise before it is refused.
MAX_LINE_CHARS = 20_000
#: The deepest JSON a line may nest: a chat is a list of objects (2); a line of thousands of ``[`` is not.
MAX_JSON_DEPTH = 8


def parse_prompt_lines(lines: Iterable[str], source: str = "<text>") -> list[Any]:
    return [r["prompt"] for r in parse_prompt_records(lines, source)]


def parse_prompt_records(lines: Iterable[str], source: str = "<text>") -> list[dict[str, Any]]:
    """Each prompt as a record: ``{"prompt": ...}`` plus the other fields of a JSON object line
    (e.g. ``kind``, ``subject``, which a study's rule judges may read)."""
    records: list[dict[str, Any]] = []
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        if len(line) > MAX_LINE_CHARS:
            raise PromptFileError(f"{source}:{n}: a prompt of {len(line):,} characters; at most {MAX_LINE_CHARS:,} per line")
        if line[0] not in '{["':
            records.append({"prompt": line})
            continue
        if _depth(line) > MAX_JSON_DEPTH:
            raise PromptFileError(f"{source}:{n}: JSON nested more than {MAX_JSON_DEPTH} levels deep; a prompt is text, "
                                  "an object with 'prompt', or a list of chat messages")
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            if line[0] == '"':
                records.append({"prompt": line})
                continue
            raise PromptFileError(f"{source}:{n}: not valid JSON ({exc.msg}); write plain text lines or one JSON value per line") from None
        fields: dict[str, Any] = {}
        if isinstance(item, dict):
            fields = {k: v for k, v in item.items() if k not in ("prompt", "instruction")}
            item = item.get("prompt", item.get("instruction"))
        if isinstance(item, list) and not all(isinstance(m, dict) and "content" in m for m in item):
            item = None
        if not isinstance(item, (str, list)) or not item:
            raise PromptFileError(f"{source}:{n}: expected a string, an object with 'prompt', or a list of chat messages")
        records.append({**fields, "prompt": item})
    return records


def _depth(line: str) -> int:
    """How deep brackets nest in a line, outside JSON strings (counted before parsing: a parser recurses)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in line:
        if in_string:
            escaped, in_string = (False, True) if escaped else (ch == "\\", ch != '"')
            continue
        if ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def read_prompt_file(path: str | Path) -> list[Any]:
    return [r["prompt"] for r in read_prompt_records(path)]


def read_prompt_records(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise PromptFileError(f"no such file: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PromptFileError(f"{path}: not UTF-8 text") from None
    return parse_prompt_records(text.splitlines(), path.name)


def sample_per_kind(items: list[Any], n_per_kind: int, seed: int = 0, kind: Any = None) -> list[Any]:
    """``n_per_kind`` items of each kind (all of a kind when it has fewer): benign, then borderline,
    then harmful, then any other kind by name, sampled with ``seed``; ``kind(item)`` reads an item's
    kind (default: ``item["kind"]``). The one rule for the built-in sets' held-out samples
    (dashboard, studies, benchmarks)."""
    import random

    kind = kind or (lambda item: item["kind"])
    rng = random.Random(seed)
    out: list[Any] = []
    known = ("benign", "borderline", "harmful")
    for k in [*known, *sorted({kind(i) for i in items} - set(known))]:
        pool = [item for item in items if kind(item) == k]
        out += rng.sample(pool, min(n_per_kind, len(pool)))
    return out
