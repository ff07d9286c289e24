"""Preference data loaders: every supported format becomes a list of ``PreferencePair``.

Formats: TRL preference files (JSONL / JSON / Parquet; standard and conversational), Anthropic
HH-RLHF transcripts, PKU-SafeRLHF rows (one objective's labels at a time), OpenAssistant message
trees (ranked siblings to pairs), and the dashboard's judgment CSV export. Malformed rows are
skipped and counted by reason in a ``LoadSummary``; a file with no usable pair is a ``DataError``.
"""

from __future__ import annotations

import csv
import gzip
import itertools
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

FORMATS = ("trl", "hh", "pku", "oasst", "dashboard")
HH_SPLIT = "\n\nAssistant:"

Messages = list[dict[str, str]]


class DataError(ValueError):
    """The file cannot be used (missing, unreadable, or without a single usable pair)."""


@dataclass(frozen=True)
class PreferencePair:
    """``prompt`` is text or chat messages ending before the answer; responses are plain text."""

    prompt: str | tuple[dict[str, str], ...]
    chosen: str
    rejected: str
    #: what kind of pair it is (e.g. "harmful: refusal > answer"): held-out accuracy is reported per group too
    group: str = ""


@dataclass
class LoadSummary:
    path: str
    format: str
    rows: int = 0
    pairs: int = 0
    skipped: Counter = field(default_factory=Counter)

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def __str__(self) -> str:
        skipped = ", ".join(f"{n} {r}" for r, n in self.skipped.most_common()) or "none"
        return f"{self.path} ({self.format}): {self.rows} rows -> {self.pairs} pairs; skipped: {skipped}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "rows": self.rows, "pairs": self.pairs, "skipped": dict(self.skipped)}


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8")


def _json_rows(path: Path, summary: LoadSummary) -> Iterator[Any]:
    """Rows of a JSONL file (optionally .gz), a JSON list, or a Parquet file; bad lines are counted."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        yield from pq.read_table(path).to_pylist()
        return
    if name.endswith(".json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            data = None
        if isinstance(data, list):
            yield from data
            return
    with _open_text(path) as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                summary.rows += 1
                summary.skip("invalid JSON")


def _text(x: Any) -> str | None:
    return x if isinstance(x, str) and x.strip() else None


def _messages(x: Any) -> Messages | None:
    if isinstance(x, list) and x and all(isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role") for m in x):
        return [{"role": str(m["role"]), "content": m["content"]} for m in x]
    return None


def _last_assistant(msgs: Messages) -> str | None:
    return msgs[-1]["content"] if msgs and msgs[-1]["role"] == "assistant" and msgs[-1]["content"].strip() else None


def _add(out: list[PreferencePair], summary: LoadSummary, prompt, chosen, rejected) -> None:
    if not chosen or not rejected:
        summary.skip("empty response")
    elif chosen == rejected:
        summary.skip("identical responses")
    elif not prompt:
        summary.skip("empty prompt")
    else:
        out.append(PreferencePair(tuple(prompt) if isinstance(prompt, list) else prompt, chosen, rejected))


def load_trl(path: Path, summary: LoadSummary, **_: Any) -> list[PreferencePair]:
    """TRL preference rows: ``prompt``/``chosen``/``rejected``, as text or as chat messages.

    The implicit-prompt conversational form (no ``prompt``; chosen and rejected are whole
    conversations that share all but the last message) is accepted too.
    """
    out: list[PreferencePair] = []
    for row in _json_rows(path, summary):
        summary.rows += 1
        if not isinstance(row, dict) or "chosen" not in row or "rejected" not in row:
            summary.skip("missing chosen/rejected")
            continue
        prompt, chosen, rejected = row.get("prompt"), row["chosen"], row["rejected"]
        if isinstance(chosen, list) or isinstance(rejected, list):
            c, r = _messages(chosen), _messages(rejected)
            if c is None or r is None:
                summary.skip("malformed messages")
                continue
            if prompt is None:  # implicit prompt: the shared prefix
                if c[:-1] != r[:-1]:
                    summary.skip("conversations differ before the last turn")
                    continue
                prompt = c[:-1]
                c, r = c[-1:], r[-1:]
            p = _messages(prompt) if isinstance(prompt, list) else ([{"role": "user", "content": prompt}] if _text(prompt) else None)
            _add(out, summary, p, _last_assistant(c), _last_assistant(r))
        else:
            if prompt is None:
                summary.skip("missing prompt")
                continue
            _add(out, summary, _text(prompt), _text(chosen), _text(rejected))
    return out


_HH_TURN = re.compile(r"\n\n(Human|Assistant):")


def hh_messages(prompt: str) -> list[dict[str, str]] | None:
    """An HH transcript prompt (ending with ``"\n\nAssistant:"``) as chat messages, or None if it
    is not one. Rendering the messages with ``formats.HH_TEMPLATE`` gives the transcript back."""
    parts = _HH_TURN.split(prompt)
    if parts[0].strip() or len(parts) < 3 or parts[-2] != "Assistant" or parts[-1].strip():
        return None
    messages = []
    for role, text in zip(parts[1:-2:2], parts[2:-2:2]):
        messages.append({"role": "user" if role == "Human" else "assistant", "content": text[1:] if text.startswith(" ") else text})
    return messages if messages and messages[-1]["role"] == "user" else None


def split_hh(transcript: str) -> tuple[str, str] | None:
    """Split an HH-RLHF transcript into (prompt up to and including the last "\\n\\nAssistant:", reply)."""
    cut = transcript.rfind(HH_SPLIT)
    if cut < 0:
        return None
    cut += len(HH_SPLIT)
    return transcript[:cut], transcript[cut:]


def load_hh(path: Path, summary: LoadSummary, **_: Any) -> list[PreferencePair]:
    """Anthropic HH-RLHF: ``{"chosen": transcript, "rejected": transcript}`` per line. Prompts
    become chat messages (``hh_messages``); replies keep their leading space."""
    out: list[PreferencePair] = []
    for row in _json_rows(path, summary):
        summary.rows += 1
        if not isinstance(row, dict) or not isinstance(row.get("chosen"), str) or not isinstance(row.get("rejected"), str):
            summary.skip("missing chosen/rejected")
            continue
        c, r = split_hh(row["chosen"]), split_hh(row["rejected"])
        if c is None or r is None:
            summary.skip("no Assistant turn")
        elif c[0] != r[0]:
            summary.skip("transcripts differ before the last reply")
        elif (messages := hh_messages(c[0])) is None:
            summary.skip("malformed transcript")
        else:
            _add(out, summary, messages, _text(c[1]), _text(r[1]))
    return out


PKU_LABELS = {"better": "better_response_id", "safer": "safer_response_id"}


def pku_label_for(objective: str | None) -> str:
    """The PKU-SafeRLHF label that fits an objective name: 'safer' for harm/safety, else 'better'."""
    name = (objective or "").lower()
    return "safer" if any(k in name for k in ("harm", "safe")) else "better"


def load_pku(path: Path, summary: LoadSummary, label: str = "better", **_: Any) -> list[PreferencePair]:
    """PKU-SafeRLHF: ``prompt``, ``response_0``, ``response_1`` and the chosen label's response id."""
    if label not in PKU_LABELS:
        raise DataError(f"PKU label must be one of {sorted(PKU_LABELS)}, got {label!r}")
    key = PKU_LABELS[label]
    out: list[PreferencePair] = []
    for row in _json_rows(path, summary):
        summary.rows += 1
        if not isinstance(row, dict):
            summary.skip("not an object")
            continue
        winner = row.get(key)
        if winner not in (0, 1, "0", "1"):
            summary.skip(f"missing {key}")
            continue
        w = int(winner)
        _add(out, summary, _text(row.get("prompt")), _text(row.get(f"response_{w}")), _text(row.get(f"response_{1 - w}")))
    return out


def _oasst_walk(node: dict, history: Messages, out: list[PreferencePair], summary: LoadSummary) -> None:
    role = "assistant" if node.get("role") == "assistant" else "user"
    text = node.get("text")
    if not isinstance(text, str):
        summary.skip("message without text")
        return
    convo = history + [{"role": role, "content": text}]
    replies = [r for r in node.get("replies") or [] if isinstance(r, dict)]
    ranked = sorted((r for r in replies if r.get("role") == "assistant" and isinstance(r.get("rank"), int)),
                    key=lambda r: r["rank"])
    for better, worse in itertools.combinations(ranked, 2):
        if better["rank"] == worse["rank"]:
            summary.skip("tied rank")
            continue
        summary.rows += 1
        _add(out, summary, list(convo), _text(better.get("text")), _text(worse.get("text")))
    for r in replies:
        _oasst_walk(r, convo, out, summary)


def load_oasst(path: Path, summary: LoadSummary, **_: Any) -> list[PreferencePair]:
    """OpenAssistant trees: each pair of ranked sibling replies (lower rank = chosen); the prompt
    is the conversation from the root down to their parent."""
    out: list[PreferencePair] = []
    for tree in _json_rows(path, summary):
        root = tree.get("prompt") if isinstance(tree, dict) else None
        if not isinstance(root, dict):
            summary.rows += 1
            summary.skip("tree without prompt")
            continue
        _oasst_walk(root, [], out, summary)
    return out


VERDICT_SIDES = {"A": ("a", "b"), "B": ("b", "a")}
#: The CSV export escapes a cell that starts like a formula with a leading quote (``storage.export.csv_safe``).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _unescaped(cell: str | None) -> str | None:
    """A cell of the dashboard's CSV as it was written before the export escaped it for spreadsheets."""
    if cell and cell.startswith("'") and cell[1:].startswith(_FORMULA_STARTS):
        return cell[1:]
    return cell


def load_dashboard(path: Path, summary: LoadSummary, objective: str | None = None, **_: Any) -> list[PreferencePair]:
    """The dashboard's judgment CSV export (``python -m storage export --format csv``).

    The overall verdict is used, or the per-objective one (``verdict_<objective>``) when an
    objective is given and the file has that column. Ties and "both bad" give no pair.
    A JSONL file from the dashboard's TRL export is read as TRL.
    """
    if path.suffix in {".jsonl", ".json", ".parquet"}:
        return load_trl(path, summary)
    out: list[PreferencePair] = []
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        needed = {"prompt", "completion_a", "completion_b", "verdict"}
        if not needed <= set(cols):
            raise DataError(f"{path}: not a dashboard judgment export (needs columns {sorted(needed)}, has {cols})")
        col = f"verdict_{objective}" if objective and f"verdict_{objective}" in cols else "verdict"
        summary.format = f"dashboard ({col})"
        for raw in reader:
            row = {k: _unescaped(v) for k, v in raw.items()}
            summary.rows += 1
            if (row.get("skipped") or "").strip().lower() == "true":
                summary.skip("skipped by the annotator")
                continue
            sides = VERDICT_SIDES.get((row.get(col) or "").strip())
            if sides is None:
                summary.skip(f"no A/B verdict ({row.get(col) or 'empty'})")
                continue
            prompt = row["prompt"]
            if row.get("prompt_messages"):
                try:
                    prompt = _messages(json.loads(row["prompt_messages"])) or prompt
                except json.JSONDecodeError:
                    pass
            _add(out, summary, prompt if prompt else None, _text(row[f"completion_{sides[0]}"]), _text(row[f"completion_{sides[1]}"]))
    return out


_LOADERS = {"trl": load_trl, "hh": load_hh, "pku": load_pku, "oasst": load_oasst, "dashboard": load_dashboard}


def load_pairs(path: str | Path, fmt: str, objective: str | None = None, pku_label: str | None = None) -> tuple[list[PreferencePair], LoadSummary]:
    """Read every usable pair of a file. Raises ``DataError`` if none is usable."""
    path = Path(path)
    if fmt not in _LOADERS:
        raise DataError(f"unknown format {fmt!r}; choose one of {list(FORMATS)}")
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    summary = LoadSummary(str(path), fmt)
    try:
        pairs = _LOADERS[fmt](path, summary, objective=objective, label=pku_label or pku_label_for(objective))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read as {fmt}: {exc}") from None
    except Exception as exc:  # pyarrow raises its own types for a file that is not Parquet
        if type(exc).__module__.startswith("pyarrow"):
            raise DataError(f"{path}: cannot read as {fmt}: {exc}") from None
        raise
    summary.pairs = len(pairs)
    if not pairs:
        raise DataError(f"no usable preference pairs in {summary}")
    return pairs, summary
