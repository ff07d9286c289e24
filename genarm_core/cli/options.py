"""Command-line options made from config dataclasses: one ``--flag`` per field, its help text from
the field's ``metadata["help"]`` and its default shown, so the CLI and the configs cannot drift."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, Iterable


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every option's default, except where there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, "", argparse.SUPPRESS) or action.default == [] or "(default:" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def _base_type(tp: Any) -> Any:
    """``int | None`` -> int; ``tuple[str, ...]`` -> tuple."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, getattr(__import__("types"), "UnionType", None)) and len(args) == 1:
        return _base_type(args[0])
    return typing.get_origin(tp) or tp


def add_fields(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type, only: Iterable[str] | None = None,
               skip: Iterable[str] = (), defaults: dict[str, Any] | None = None, default_note: str = "",
               aliases: dict[str, list[str]] | None = None) -> None:
    """Add ``--field-name`` for each dataclass field of ``cls``.

    Args:
        only, skip: which fields. defaults: override the dataclass defaults (``argparse.SUPPRESS``
            leaves an option unset unless given, for defaults decided later).
        default_note: appended to every help line (e.g. where a later default comes from).
        aliases: extra flags per field, e.g. ``{"learning_rate": ["--lr"]}``.
    """
    hints = typing.get_type_hints(cls)
    defaults = defaults or {}
    wanted = set(only) if only is not None else None
    for f in dataclasses.fields(cls):
        if f.name in set(skip) or (wanted is not None and f.name not in wanted):
            continue
        flags = ["--" + f.name.replace("_", "-"), *(aliases or {}).get(f.name, [])]
        help_text = f.metadata.get("help", "") + default_note
        default = defaults.get(f.name, f.default if f.default is not dataclasses.MISSING else None)
        kind = _base_type(hints[f.name])
        if kind is bool:
            parser.add_argument(*flags, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        elif kind is tuple:
            parser.add_argument(*flags, action="append", default=default, help=help_text + " (repeatable)")
        else:
            parser.add_argument(*flags, type=kind, default=default, help=help_text,
                                required=f.default is dataclasses.MISSING and f.name not in defaults)


def field_values(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The values of ``cls``'s fields that ``args`` holds (options left unset are not included)."""
    out = {}
    for f in dataclasses.fields(cls):
        if hasattr(args, f.name):
            value = getattr(args, f.name)
            out[f.name] = tuple(value) if isinstance(value, list) else value
    return out
