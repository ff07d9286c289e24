"""The decoding methods, one small class each, and the registry every list of methods comes from.

Every place a method is chosen (``RowSpec``/``Setting``, the engine, ``genarm generate --method``, the
dashboard's panels, study files, the README's table of methods) reads ``METHODS`` and asks the
method itself (``core.Method``) what it needs; nothing outside this package compares a method's
name.

Adding a method: a file here with a ``Method`` subclass (see ``core.Method`` for what it may
answer, and ``blockwise.py`` for a method that makes rows continue from others), one line in
``_ORDER`` below, and its tests.
"""

from __future__ import annotations

from .args import METHOD as ARGS
from .base_only import METHOD as BASE
from .best_of_n import BEST_OF_N, BON_RM
from .blockwise import METHOD as BLOCKWISE
from .core import Method, Option, Row, row_seed
from .genarm import METHOD as GENARM
from .prompted import METHOD as PROMPTED

_ORDER = (GENARM, BASE, BEST_OF_N, ARGS, PROMPTED, BON_RM, BLOCKWISE)
#: every method by its name, in the order pages and the CLI list them
METHODS: dict[str, Method] = {m.name: m for m in _ORDER}
#: what each method is called on a page; the code's names are the keys
METHOD_LABELS: dict[str, str] = {m.name: m.label for m in _ORDER}


def method(name: str) -> Method:
    """The method called ``name`` in code or on a page (``"bon_rm"`` or ``"Best-of-N (RM)"``, any case).

    Raises:
        KeyError: no such method; the message lists them by their page names.
    """
    key = str(name).lower()
    for m in _ORDER:
        if key in (m.name, m.label.lower()):
            return m
    raise KeyError(f"method must be one of {list(METHOD_LABELS.values())}, got {name!r}")


def markdown_table() -> str:
    """The README's table of methods (``python -m genarm_core.decoding.methods`` prints it; a test
    checks the README holds exactly this)."""
    lines = ["| method | what it does | cost per token (model forwards) | N | options |", "| --- | --- | --- | --- | --- |"]
    for m in _ORDER:
        n = f"{m.n_meaning}, {m.n_range[0]}–{m.n_range[1]}, default {m.default_n}" if m.n_meaning else "–"
        opts = "; ".join(f"`{k}`: {o.help}, {o.low}–{o.high}, default {o.default}" for k, o in m.options.items()) or "–"
        lines.append(f"| `{m.name}` | {m.summary} | {m.cost} | {n} | {opts} |")
    return "\n".join(lines)


__all__ = ["METHODS", "METHOD_LABELS", "Method", "Option", "Row", "method", "row_seed"]
