"""Reading what a person or an API client sent: decoding settings, settings, verdicts, prompts, grids.

Every function here turns raw values (text from a box, JSON from the API) into checked data, or
raises ``UserError`` with a message that names the field. Nothing here touches a model or the
database.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Sequence

from genarm_core.evaluation.verdicts import VERDICTS
from genarm_core.models.config import ConfigError, DecodingConfig, ModelSetConfig, Setting
from genarm_core.models.prompts import PromptFileError, parse_prompt_lines, read_prompt_file

from .errors import UserError

#: A seed must fit a signed 64-bit integer (the database's INTEGER, torch's generator).
SEED_RANGE = (-(2**63), 2**63 - 1)
#: top-k beyond any vocabulary keeps every token (as 0 does); a bigger number would not fit the database.
MAX_TOP_K = 1_000_000
#: Names people type (annotators, presets, studies) fit the database's columns.
MAX_NAME_CHARS = 200


def text(value: Any, field: str, max_chars: int | None = None, allow_empty: bool = True) -> str:
    """Text from a box or the API: a string without NUL characters (PostgreSQL cannot store them), at
    most ``max_chars`` long; ``UserError`` naming ``field``."""
    value = "" if value is None else value
    if not isinstance(value, str):
        raise UserError(f"{field} must be text, got {type(value).__name__}")
    if "\x00" in value:
        raise UserError(f"{field} contains a NUL character (\\x00); remove it")
    if max_chars is not None and len(value) > max_chars:
        raise UserError(f"{field} is {len(value):,} characters; at most {max_chars:,}")
    if not allow_empty and not value.strip():
        raise UserError(f"{field} is empty")
    return value


def name(value: Any, field: str) -> str:
    """A name people type (annotator, preset, study): text of at most ``MAX_NAME_CHARS``, stripped."""
    return text(value, field, MAX_NAME_CHARS).strip()


def number(value: Any, field: str, integer: bool = False) -> float | int:
    """A finite number (or a whole one) from a box, a slider or JSON; ``UserError`` naming ``field``."""
    if isinstance(value, bool) or value is None or (isinstance(value, str) and not value.strip()):
        raise UserError(f"{field} must be a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"{field} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise UserError(f"{field} must be a finite number, got {value!r}")
    if integer:
        if x != int(x):
            raise UserError(f"{field} must be a whole number, got {value!r}")
        return int(value) if isinstance(value, int) else int(x)
    return x


def decoding(config: ModelSetConfig, beta: Any, temperature: Any, top_k: Any, top_p: Any, max_new_tokens: Any, seed: Any,
             trace: bool = True) -> DecodingConfig:
    """The shared decoding settings of a request, checked against the model set's cap."""
    seed_v = number(seed, "seed", integer=True)
    if not SEED_RANGE[0] <= seed_v <= SEED_RANGE[1]:
        raise UserError(f"seed must fit in 64 bits (between {SEED_RANGE[0]} and {SEED_RANGE[1]}), got {seed!r}")
    max_new = number(max_new_tokens, "max new tokens", integer=True)
    if max_new > config.max_new_tokens_cap:
        raise UserError(f"max new tokens is {max_new}; this server allows at most {config.max_new_tokens_cap}")
    k = number(top_k, "top-k", integer=True)
    if not 0 <= k <= MAX_TOP_K:
        raise UserError(f"top_k must be a whole number from 0 (off) to {MAX_TOP_K:,}, got {top_k!r}")
    try:
        return DecodingConfig(beta=number(beta, "β"), temperature=number(temperature, "temperature"),
                              top_k=k, top_p=number(top_p, "top-p"),
                              max_new_tokens=max_new, seed=seed_v, stop=config.defaults.stop, trace=trace)
    except ConfigError as exc:
        raise UserError(str(exc).replace("beta", "β")) from None


def setting(config: ModelSetConfig, method: Any, weights: Any, n: Any = 1, where: str = "",
            options: Any = None) -> Setting:
    """A ``Setting`` checked against the set's objectives and weight ranges (``where`` prefixes the
    message, e.g. "panel A"); ``options``: the method's own parameters (e.g. a block size)."""
    try:
        s = config.setting(method, weights, n, options)  # an empty box or letters: "weight of 'x' must be a number"
    except ConfigError as exc:
        raise UserError(f"{where}: {exc}" if where else str(exc)) from None
    problem = config.method_problem(s.method, dict(s.weights))
    if problem:
        raise UserError(f"{where + ': ' if where else ''}{problem}")
    return s


def json_object(text: Any, field: str, example: str) -> dict[str, Any]:
    """A JSON object from the API (a dict passes as it is)."""
    if isinstance(text, dict):
        return text
    if text is None or (isinstance(text, str) and not text.strip()):
        return {}
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        raise UserError(f"{field} must be a JSON object such as {example}, got {text!r}") from None
    if not isinstance(value, dict):
        raise UserError(f"{field} must be a JSON object such as {example}, got {text!r}")
    return value


def generation_id(value: Any, field: str, what: str = "a generation id") -> int:
    """A stored row's id (a generation's, or with ``what`` a judgment's) as sent: a whole number from 1."""
    try:
        n = number(value, field, integer=True)
    except UserError:
        raise UserError(f"{field} must be {what} (a whole number), got {value!r}") from None
    if n < 1:
        raise UserError(f"{field} must be {what} (a whole number from 1), got {value!r}")
    return int(n)


def verdicts(config: ModelSetConfig, verdict: Any, per_objective: Any) -> tuple[str, dict[str, str]]:
    """The overall verdict and per-objective ones (only objectives of the loaded set)."""
    if verdict not in VERDICTS:
        raise UserError(f"verdict must be one of {list(VERDICTS)}, got {verdict!r}")
    per = json_object(per_objective, "objective_verdicts", '{"harmlessness": "B"}')
    unknown = sorted(set(per) - set(config.objective_names))
    if unknown:
        raise UserError(f"objective_verdicts: unknown objective(s) {unknown}; this model set has {config.objective_names}")
    clean = {}
    for name, v in per.items():
        if v in (None, ""):
            continue
        if v not in VERDICTS:
            raise UserError(f"objective_verdicts: the verdict for {name!r} must be one of {list(VERDICTS)}, got {v!r}")
        clean[name] = v
    return verdict, clean


_ROLES = {"user": "user", "human": "user", "assistant": "assistant", "system": "system"}


def parse_chat(text: str) -> list[dict[str, str]]:
    """A multi-turn prompt typed as lines ``User: …`` / ``Assistant: …`` (``System:`` too) -> messages.

    Lines without a role marker continue the previous message; text with no marker at all is one
    user message. The conversation must end with a user turn (the model answers it).
    """
    messages: list[dict[str, str]] = []
    for line in text.splitlines():
        m = re.match(r"^\s*(user|human|assistant|system)\s*:\s?(.*)$", line, flags=re.IGNORECASE)
        if m:
            messages.append({"role": _ROLES[m.group(1).lower()], "content": m.group(2)})
        elif messages:
            messages[-1]["content"] += "\n" + line
        elif line.strip():
            messages.append({"role": "user", "content": line})
    messages = [{"role": m["role"], "content": m["content"].strip()} for m in messages]
    if not messages or not any(m["content"] for m in messages):
        raise UserError("the prompt is empty")
    if messages[-1]["role"] != "user":
        raise UserError("a chat prompt must end with a 'User:' turn for the model to answer")
    return messages


#: The most settings a weight grid may make (its size is computed from its text before anything is built).
MAX_GRID_SETTINGS = 400
#: The longest grid text read.
MAX_GRID_CHARS = 2000


def parse_grid(text: str, objectives: Sequence[str]) -> dict[str, list[float]]:
    """``"helpfulness: 0, 1, 2; harmlessness: 0, 2"`` -> ``{"helpfulness": [0, 1, 2], "harmlessness": [0, 2]}``.

    ``a:b:n`` inside the list expands to n evenly spaced values from a to b. The grid's size (the
    product of each objective's number of values) is computed from the text first, and a grid of more
    than ``MAX_GRID_SETTINGS`` settings is refused before any value is made.
    """
    text = text or ""
    if len(text) > MAX_GRID_CHARS:
        raise UserError(f"grid: {len(text):,} characters; write at most {MAX_GRID_CHARS:,}")
    terms: dict[str, list[tuple[float, float, int] | float]] = {}
    for part in text.replace("\n", ";").split(";"):
        if not part.strip():
            continue
        name, sep, values = part.partition(":")
        name = name.strip()
        if not sep or name not in objectives:
            raise UserError(f"grid: expected 'objective: w1, w2, ...' with an objective of {list(objectives)}, got {part.strip()!r}")
        mine = terms.setdefault(name, [])
        for v in values.split(","):
            v = v.strip()
            if not v:
                continue
            parts = v.split(":")
            try:
                if len(parts) == 3:  # a:b:n
                    a, b, n = float(parts[0]), float(parts[1]), int(parts[2])
                elif len(parts) == 1:
                    mine.append(float(v))
                    continue
                else:
                    raise ValueError
            except ValueError:
                raise UserError(f"grid: {v!r} is neither a number nor 'from:to:count' such as 0:2:5") from None
            if not 1 <= n <= 101:
                raise UserError(f"grid: {v!r} asks for {n} values; give between 1 and 101")
            mine.append((a, b, n))
    if not terms:
        raise UserError("the grid is empty; e.g. 'helpfulness: 0, 1, 2; harmlessness: 0, 1, 2'")
    size = 1
    for name, mine in terms.items():
        size *= max(1, sum(t[2] if isinstance(t, tuple) else 1 for t in mine))
        if size > MAX_GRID_SETTINGS:
            raise UserError(f"grid: more than {MAX_GRID_SETTINGS} settings (the product of each objective's number of "
                            "values); use fewer values")
    return {name: [x for t in mine for x in ([t] if not isinstance(t, tuple) else
                                               [t[0] + (t[1] - t[0]) * i / max(1, t[2] - 1) for i in range(t[2])])]
            for name, mine in terms.items()}


def read_prompt_list(text: str | None = None, path: str | None = None, limit: int = 500) -> list[Any]:
    """Prompts from pasted lines and/or an uploaded file (``genarm_core.models.prompts`` says which lines count)."""
    prompts: list[Any] = []
    try:
        if text:
            prompts += parse_prompt_lines(text.splitlines(), "pasted list")
        if path:
            prompts += read_prompt_file(path)
    except PromptFileError as exc:
        raise UserError(str(exc)) from None
    if len(prompts) > limit:
        raise UserError(f"{len(prompts)} prompts; at most {limit} per study")
    return prompts
