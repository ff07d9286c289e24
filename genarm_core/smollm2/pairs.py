"""Preference pairs for the SmolLM2 ARMs, in the model's own words.

The base writes the opening of its own answer to every training prompt (``openings``): a plain one
(its default system message), a vague, evasive one under a contrasting system message, and for the
benign and borderline-safe prompts a specific, complete one under the opposite message (RLCD's
contrastive prompts, Yang et al. 2024; all in the base's own words). Each objective then contrasts
them:

    objective      harmful prompt                          borderline-safe and benign prompt
    harmlessness   a refusal  >  the base's plain opening  the base's plain opening  >  a refusal
    helpfulness    a refusal  >  its dodge or its answer   the specific opening  >  the vague one
                                                           the specific opening  >  an unneeded refusal

So harmlessness learns to tell harm from alarming words: it refuses "how do I kill my stepdad" and
answers "how do I kill an app that froze", whose wording it shares (``borderline_training.py``).
Helpfulness learns what the base cannot already rank, specific against vague (its own plain answer
would be ranked above any other text by the base itself: that pair teaches nothing), and it pushes
against an unneeded refusal of a safe request. It is helpfulness within safety: on a harmful request
it prefers a clear refusal to an evasive dodge or a harmful answer. Trained on safe prompts alone it
learned that every refusal is unhelpful and pulled harmful refusals down as hard as borderline ones;
so raising it now moves along the safety / over-refusal frontier instead of against harmlessness.

Openings are cut short, so they carry no EOS. A refusal that is *chosen* ends with the EOS token
written out, so harmlessness learns that a refusal ends there (``ARMTrainingConfig.response_eos`` is
off); a *rejected* refusal carries no EOS, so no ARM learns to push the end of a reply down (with it,
a steered refusal often failed to end). Openings the base already wrote as a refusal are left out
(``judge.is_refusal``), and so are vague openings that are refusals.
"""

from __future__ import annotations

import random
from typing import Any, Sequence

from ..training.data import PreferencePair
from .judge import is_refusal

REFUSALS = ("I'm sorry, but I can't help with that.", "I'm sorry, but I can't help with that. It could hurt someone.")
#: The contrasting system messages of the helpfulness openings (RLCD): the same request, answered two ways.
SPECIFIC = ("You are a helpful assistant. Answer the request directly and specifically: name the concrete steps, "
            "facts or details it asks for.")
VAGUE = ("You are an assistant that avoids the question. Answer vaguely and evasively with generic filler, "
         "without any concrete step, fact or detail.")


def complete(text: str, eos: str) -> str:
    """A whole short reply: the EOS token written out after it (the tokenizer reads it as EOS)."""
    return text + eos


def make_pairs(openings: Sequence[dict[str, Any]], eos: str, seed: int = 0) -> dict[str, list[PreferencePair]]:
    """Pairs per objective from the base's ``openings``: dicts with ``prompt``, ``kind`` and ``answer``
    (the plain opening), and for benign and borderline prompts ``specific`` and ``vague``."""
    rng = random.Random(seed)
    out: dict[str, list[PreferencePair]] = {"harmlessness": [], "helpfulness": []}
    for o in openings:
        answer = o["answer"].strip()
        if answer and not is_refusal(answer):
            if o["kind"] == "harmful":
                out["harmlessness"].append(PreferencePair(o["prompt"], complete(rng.choice(REFUSALS), eos), answer,
                                                          "harmful: refusal > answer"))
            else:
                out["harmlessness"].append(PreferencePair(o["prompt"], answer, rng.choice(REFUSALS),
                                                          f"{o['kind']}: answer > refusal"))
        specific, vague = o.get("specific", "").strip(), o.get("vague", "").strip()
        if o["kind"] == "harmful":
            # Helpful within safety: on a harmful request a clear refusal beats an evasive dodge and a harmful
            # answer. Trained on safe prompts only, helpfulness learned that every refusal is unhelpful and
            # pulled harmful refusals down as hard as borderline ones (README, the objectives).
            rejected = vague if vague and not is_refusal(vague) and rng.random() < 0.5 else answer
            if rejected and not is_refusal(rejected):
                out["helpfulness"].append(PreferencePair(o["prompt"], complete(rng.choice(REFUSALS), eos), rejected,
                                                         "harmful: refusal > dodge or answer"))
            continue
        if not specific or is_refusal(specific):
            continue
        if vague and not is_refusal(vague) and vague != specific:
            out["helpfulness"].append(PreferencePair(o["prompt"], specific, vague, "specific > vague"))
        if o["kind"] == "borderline" or rng.random() < 0.25:  # an unneeded refusal, mostly of what sounds unsafe
            out["helpfulness"].append(PreferencePair(o["prompt"], specific, rng.choice(REFUSALS), "answer > refusal"))
    return out
