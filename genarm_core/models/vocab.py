"""Vocabulary compatibility between the base model and its ARMs (GENARM.md §3).

Response tokens are shared by every model, so every model must map the same token to the same
id. Embedding matrices may still differ in rows (32000 vs 32001 after a pad token was added, or
rows padded to a multiple of 64): the engine slices every model's logits to the shared length.
"""

from __future__ import annotations

from collections.abc import Mapping


class VocabularyMismatch(ValueError):
    """Two tokenizers disagree on a token's id."""


def shared_vocab_size(vocabs: Mapping[str, Mapping[str, int]], logit_sizes: Mapping[str, int]) -> int:
    """Check that the token-to-id maps agree and return the shared vocabulary length V.

    Args:
        vocabs: model name -> its tokenizer's full token-to-id map (added tokens included).
        logit_sizes: model name -> width of that model's output logits.

    Returns:
        V such that ids 0..V-1 mean the same token in every tokenizer and every model has logits
        for them. Tokens only some tokenizers know (e.g. an added pad token) must lie at ids >= V.

    Raises:
        VocabularyMismatch: naming a token whose id differs, or a token one tokenizer has inside
        the shared range that another lacks.
    """
    names = list(vocabs)
    ref_name = names[0]
    ref = vocabs[ref_name]
    V = min(min(len(v) for v in vocabs.values()), min(logit_sizes.values()))
    ref_by_id = {i: t for t, i in ref.items()}
    for other_name in names[1:]:
        other = vocabs[other_name]
        for token, idx in other.items():
            ref_idx = ref.get(token)
            if ref_idx is not None and ref_idx != idx:
                raise VocabularyMismatch(
                    f"tokenizers of '{ref_name}' and '{other_name}' disagree: token {token!r} has id {ref_idx} "
                    f"in '{ref_name}' but id {idx} in '{other_name}'. Use ARMs trained with the base model's tokenizer."
                )
            if ref_idx is None and idx < V:
                raise VocabularyMismatch(
                    f"token {token!r} (id {idx}) of '{other_name}' is unknown to '{ref_name}', whose id {idx} is "
                    f"{ref_by_id.get(idx)!r}. Use ARMs trained with the base model's tokenizer."
                )
    return V
