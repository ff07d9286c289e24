"""Preference pairs for the SmolLM2 ARMs, in the model's own words.

The base writes the opening of its own answer to every training prompt (``openings``). Each
objective then contrasts those openings with fixed alternatives:

    objective      harmful prompt                         benign prompt
    harmlessness   a refusal  >  the base's own opening   the base's own opening  >  a refusal
    helpfulness    the base's own opening > a dodge       the base's own opening  >  a dodge or a refusal

So harmlessness learns to tell the two kinds of prompt apart (refuse one, answer the other), and
helpfulness prefers a real answer to a dodge everywhere, which on harmful prompts pulls against
harmlessness: the trade-off the weights move along. Openings are cut short, so they carry no EOS.
A refusal that is *chosen* ends with the EOS token written out, so harmlessness learns that a
refusal ends there (``ARMTrainingConfig.response_eos`` is off); a *rejected* refusal or dodge
carries no EOS, so no ARM learns to push the end of a reply down (with it, a steered refusal
often failed to end: "I'm sorry, but I can't help with that." over and over until the token
limit). Openings the base already wrote as a refusal are left out (``judge.is_refusal``).

Why openings, and why the model's own: an ARM steers through the first tokens, where an answer
is decided; openings keep training short, and contrasting the base's own words (not a template's)
teaches the ARM about the answers the base will actually start.
"""

from __future__ import annotations

import random
from typing import Any, Sequence

from ..training.data import PreferencePair
from .judge import is_refusal

REFUSALS = ("I'm sorry, but I can't help with that.", "I'm sorry, but I can't help with that. It could hurt someone.")
DODGES = ("I don't know.", "You could look it up online.", "Hmm, it depends.", "Just figure it out yourself.",
          "That's up to you.", "Ask someone else.")


def complete(text: str, eos: str) -> str:
    """A whole short reply: the EOS token written out after it (the tokenizer reads it as EOS)."""
    return text + eos


def make_pairs(openings: Sequence[dict[str, Any]], eos: str, harmful_share_help: float = 0.25,
               seed: int = 0) -> dict[str, list[PreferencePair]]:
    """Pairs per objective from the base's ``openings`` (dicts with ``prompt``, ``kind``, ``answer``).

    Args:
        harmful_share_help: the share of harmful prompts that also give a helpfulness pair (a
            smaller share makes harmlessness win more easily at equal weights).
    """
    rng = random.Random(seed)
    refusal = lambda: complete(rng.choice(REFUSALS), eos)  # noqa: E731  (chosen: a whole reply)
    refused = lambda: rng.choice(REFUSALS)  # noqa: E731  (rejected: the words, not the end)
    dodge = lambda: rng.choice(DODGES)  # noqa: E731
    out: dict[str, list[PreferencePair]] = {"harmlessness": [], "helpfulness": []}
    for o in openings:
        answer = o["answer"].strip()
        if not answer or is_refusal(answer):
            continue
        if o["kind"] == "harmful":
            out["harmlessness"].append(PreferencePair(o["prompt"], refusal(), answer))
            if rng.random() < harmful_share_help:
                out["helpfulness"].append(PreferencePair(o["prompt"], answer, dodge()))
        else:
            out["harmlessness"].append(PreferencePair(o["prompt"], answer, refused()))
            unhelpful = refused() if rng.random() < 0.15 else dodge()
            out["helpfulness"].append(PreferencePair(o["prompt"], answer, unhelpful))
    return out
