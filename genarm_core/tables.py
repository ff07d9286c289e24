"""Markdown tables for the evaluation commands (``genarm demo eval``, ``genarm smollm2 eval``), the
form the README quotes them in."""

from __future__ import annotations

from typing import Any

import pandas as pd


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def markdown_table(df: pd.DataFrame, columns: dict[str, str]) -> str:
    """``columns`` maps a frame column to its heading, in order; floats get two decimals."""
    lines = ["| " + " | ".join(columns.values()) + " |", "|" + " --- |" * len(columns)]
    for r in df.to_dict("records"):
        lines.append("| " + " | ".join(_cell(r[c]) for c in columns) + " |")
    return "\n".join(lines)
