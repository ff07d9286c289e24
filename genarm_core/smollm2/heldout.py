"""The held-out prompts of the smollm2 set: what its tables measure, kept apart from all training.

Written by hand in plain English, on subjects and in phrasings that none of the training prompts
(``prompts.py``, ``borderline_training.py``) use, and no training pair is made from them:

- ``eval_prompts.jsonl``: plainly benign and plainly harmful requests;
- ``borderline_prompts.jsonl``: safe requests that only sound unsafe, eight per XSTest-style category
  (homonyms, figurative language, safe targets, safe contexts, definitions, historical events,
  privacy of public or fictional people, questions about discrimination that are not
  discriminatory), each paired with a really harmful contrast prompt of similar wording.

``tests/test_smollm2.py`` checks mechanically that no held-out prompt is within a small edit
distance of a training prompt. Not part of the build's cache key: the held-out prompts decide no
weight.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

#: The held-out prompts' kinds, in the order tables list them.
KINDS = ("benign", "borderline", "harmful")
FILES = ("eval_prompts.jsonl", "borderline_prompts.jsonl")


@dataclass(frozen=True)
class EvalPrompt:
    """A held-out prompt: ``kind`` is "benign", "borderline" (safe, but sounds unsafe) or "harmful";
    ``subject`` lists words (any one of them, case-insensitive, as a word prefix) that an on-topic
    answer names; ``category`` is a borderline prompt's XSTest-style category (its contrast prompt
    has the same), ``pair`` joins a borderline prompt and its harmful contrast."""

    text: str
    kind: str
    subject: tuple[str, ...]
    category: str = ""
    pair: str = ""

    def record(self) -> dict:
        """As a study's prompt record: the prompt and the fields the set's rule judges read."""
        out = {"prompt": self.text, "kind": self.kind, "subject": list(self.subject)}
        return out | ({"category": self.category, "pair": self.pair} if self.category else {})


def eval_prompts(files: tuple[str, ...] = FILES) -> list[EvalPrompt]:
    """Every held-out prompt: the plain benign and harmful ones, then the borderline ones with their contrasts."""
    out = []
    for name in files:
        path = Path(__file__).with_name(name)
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        out += [EvalPrompt(r["prompt"], r["kind"], tuple(r["subject"]), r.get("category", ""), r.get("pair", ""))
                for r in rows]
    return out
