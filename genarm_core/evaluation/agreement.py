"""Do the annotators agree? Agreement over items judged by two or more people, and per annotator.

An *item* is a pair of completions, whoever judged it in whichever order: verdicts are turned to
one orientation (the lower generation id as A) before they are compared.

- ``krippendorff_alpha``: Krippendorff's α, nominal, over the labels people gave (the four
  verdicts, or one objective's), computed by the ``krippendorff`` package; 1 is perfect
  agreement, 0 what chance gives, below 0 systematic disagreement.
- ``agreement_rate``: the share of pairs of annotators on the same item who gave the same label.
- ``annotator_table``: per annotator, judgments, the share agreeing with the majority of the
  others on the same item (when two or more others judged it and their majority is unique),
  position bias (of their blind decisive verdicts, the share for the side shown on the left: 0.5
  is none), and the median seconds from the pair being ready to the vote.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Sequence

import numpy as np

FLIP = {"A": "B", "B": "A"}


def oriented(a_id: int, b_id: int, verdict: str) -> tuple[tuple[int, int], str]:
    """(item, label): the pair with its lower generation id first, the verdict turned to match."""
    if a_id <= b_id:
        return (a_id, b_id), verdict
    return (b_id, a_id), FLIP.get(verdict, verdict)


def _by_item(rows: Iterable[tuple[Any, str, str]]) -> dict[Any, dict[str, str]]:
    """(item, annotator, label) rows -> item -> annotator -> label (an annotator's latest kept)."""
    out: dict[Any, dict[str, str]] = {}
    for item, who, label in rows:
        out.setdefault(item, {})[who] = label
    return out


def krippendorff_alpha(rows: Sequence[tuple[Any, str, str]]) -> tuple[float | None, int]:
    """(α, items judged by two or more annotators); α None when fewer than 2 such items or one label only."""
    import krippendorff

    items = {i: v for i, v in _by_item(rows).items() if len(v) >= 2}
    if len(items) < 2:
        return None, len(items)
    raters = sorted({r for v in items.values() for r in v})
    labels = sorted({lab for v in items.values() for lab in v.values()})
    if len(labels) < 2:
        return None, len(items)
    code = {lab: k for k, lab in enumerate(labels)}
    data = np.full((len(raters), len(items)), np.nan)
    for j, v in enumerate(items.values()):
        for r, lab in v.items():
            data[raters.index(r), j] = code[lab]
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")), len(items)


def agreement_rate(rows: Sequence[tuple[Any, str, str]]) -> tuple[float | None, int]:
    """(share of agreeing annotator pairs on the same item, number of such pairs)."""
    same = total = 0
    for v in _by_item(rows).values():
        labels = list(v.values())
        for i in range(len(labels)):
            for j in range(i + 1, len(labels)):
                total += 1
                same += labels[i] == labels[j]
    return (same / total if total else None), total


def annotator_table(judgments: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per annotator. Each judgment: annotator, item, label, blind, shown_left (the label
    that means "the side shown on the left"), seconds (ready to vote, or None)."""
    items = _by_item((j["item"], j["annotator"], j["label"]) for j in judgments)
    out = []
    for who in sorted({j["annotator"] for j in judgments}):
        mine = [j for j in judgments if j["annotator"] == who]
        agree = compared = 0
        for item in {j["item"] for j in mine}:
            others = [lab for r, lab in items[item].items() if r != who]
            if len(others) < 2:
                continue
            (top, k), *rest = Counter(others).most_common()
            if rest and rest[0][1] == k:
                continue  # no unique majority
            compared += 1
            agree += items[item][who] == top
        blind = [j for j in mine if j["blind"] and j["label"] in ("A", "B")]
        seconds = [j["seconds"] for j in mine if j.get("seconds") is not None and j["seconds"] >= 0]
        out.append({"annotator": who, "judgments": len(mine),
                    "agrees with the others' majority": round(agree / compared, 2) if compared else None,
                    "items with a majority": compared,
                    "left side chosen (blind, decisive)": round(sum(j["label"] == j["shown_left"] for j in blind) / len(blind), 2)
                    if blind else None,
                    "blind decisive": len(blind),
                    "median seconds": round(float(np.median(seconds)), 1) if seconds else None})
    return out
