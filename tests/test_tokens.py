"""The engine never samples a special token other than EOS, nor a byte that breaks a character."""

import pytest
import torch

from genarm_core.models.config import DecodingConfig, RowSpec
from genarm_core.decoding.tokens import IncrementalText, TokenRules, excluded_ids, token_bytes, utf8_step

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


def metaspace_tokenizer():
    """A SentencePiece-style tokenizer (Llama 2, Mistral): words start with '▁' and a decode drops
    the first word's leading space, so decoding a window differs from decoding the whole."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    corpus = [TEXT, "The quick brown fox jumps over the lazy dog .", "Bake bread , then rest it !"] * 20
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=120, special_tokens=["<unk>", "</s>"]))
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", unk_token="<unk>")


@pytest.mark.parametrize("which", ["byte-level BPE", "SentencePiece-style"])
def test_incremental_text_equals_decoding_everything(which, tiny_tokenizer):
    """The engine's per-step text (a decoded window) is the whole completion decoded, at every
    step, for token sequences the engine may produce (whole characters, open ones held back)."""
    tok = tiny_tokenizer if which == "byte-level BPE" else metaspace_tokenizer()
    V = len(tok)
    rules = TokenRules.for_tokenizer(tok, V, {tok.eos_token_id})
    texts = [TEXT, " " + TEXT + " the end.", "Bake bread , then rest it ! café"]
    sequences = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    g = torch.Generator().manual_seed(0)
    for _ in range(20):  # random sequences of allowed tokens, as the engine samples them
        state, ids = torch.zeros(1, dtype=torch.long), []
        for _ in range(40):
            allowed = (~rules.mask(state)[0]).nonzero().flatten()
            t = allowed[torch.randint(len(allowed), (1,), generator=g)]
            ids.append(int(t))
            state = rules.advance(state, t)
        sequences.append(ids)
    held_back = 0
    for ids in sequences:
        inc, state = IncrementalText(tok), torch.zeros(1, dtype=torch.long)
        for i, t in enumerate(ids):
            state = rules.advance(state, torch.tensor([t]))
            full = tok.decode(ids[: i + 1], skip_special_tokens=True)
            open_char = bool(state.item())
            held_back += open_char
            assert inc.push(t, open_char) == (full.rstrip("\ufffd") if open_char else full), (which, ids[: i + 1])
    assert which != "byte-level BPE" or held_back  # characters split over tokens were exercised
