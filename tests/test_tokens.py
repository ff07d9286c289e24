"""The engine never samples a special token other than EOS, nor a byte that breaks a character."""

import pytest
import torch

from genarm_core.config import DecodingConfig, RowSpec
from genarm_core.tokens import TokenRules, excluded_ids, token_bytes, utf8_step

TEXT = "café 日本 naïve"


def test_utf8_steps():
    assert utf8_step(0, b"abc") == 0
    assert utf8_step(0, "é".encode()[:1]) == 1 and utf8_step(1, "é".encode()[1:]) == 0
    assert utf8_step(0, "日".encode()[:1]) == 2 and utf8_step(2, b"\x97") == 1
    assert utf8_step(0, b"\x97") is None  # a continuation byte with nothing to continue
    assert utf8_step(1, b"a") is None  # a character cut short


def test_rules_follow_a_real_encoding(tiny_tokenizer):
    V = len(tiny_tokenizer)
    eos = {tiny_tokenizer.eos_token_id}
    rules = TokenRules.for_tokenizer(tiny_tokenizer, V, eos)
    assert excluded_ids(tiny_tokenizer, V, eos) == [tiny_tokenizer.pad_token_id] == rules.excluded
    data = token_bytes(tiny_tokenizer, V)
    state = torch.zeros(1, dtype=torch.long)
    split_inside_a_character = False
    for tok in tiny_tokenizer(TEXT, add_special_tokens=False)["input_ids"]:
        assert not rules.mask(state)[0, tok], "every token of real text is allowed in its place"
        state = rules.advance(state, torch.tensor([tok]))
        split_inside_a_character |= bool(state.item())
    assert state.item() == 0 and split_inside_a_character  # the tokenizer does split characters
    lone = next(v for v, b in enumerate(data) if b is not None and len(b) == 1 and b[0] & 0xC0 == 0x80)
    assert rules.mask(torch.tensor([0]))[0, lone]  # a lone continuation byte cannot start anything
    assert not rules.mask(torch.tensor([1]))[0, lone]
    eos_id = tiny_tokenizer.eos_token_id
    assert not rules.mask(torch.tensor([0]))[0, eos_id] and rules.mask(torch.tensor([1]))[0, eos_id]


@pytest.fixture
def biased_engine(tiny_models, engine):
    """The tiny base, pushed hard towards its pad token and a lone continuation byte."""
    tok = tiny_models.tokenizer
    data = token_bytes(tok, tiny_models.vocab_size)
    lone = next(v for v, b in enumerate(data) if b is not None and len(b) == 1 and b[0] & 0xC0 == 0x80)
    head = tiny_models.base.model.get_output_embeddings()
    bias = torch.zeros(head.weight.shape[0])
    bias[tok.pad_token_id], bias[lone] = 30.0, 25.0
    hook = head.register_forward_hook(lambda module, inputs, out: out + bias)
    yield engine, lone
    hook.remove()


def test_pad_and_broken_bytes_are_never_sampled(biased_engine, tiny_models):
    engine, lone = biased_engine
    pad = tiny_models.tokenizer.pad_token_id
    for seed in range(4):
        cfg = DecodingConfig(temperature=1.0, max_new_tokens=24, seed=seed, trace=True, stop_at_eos=False)
        for r in engine.generate([RowSpec("Hello", {"helpfulness": 1.0}), RowSpec("Hello", method="base")], cfg):
            assert pad not in r.token_ids
            assert "\ufffd" not in r.text and "<|pad|>" not in r.text
            assert "".join(step["text"] for step in r.trace) == r.text  # the token view holds back half characters
    greedy = engine.generate([RowSpec("Hello", method="base")], DecodingConfig(temperature=0, max_new_tokens=8))[0]
    assert pad not in greedy.token_ids and lone not in greedy.token_ids[:1]
