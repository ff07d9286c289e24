"""Small models built from a config, for tests, benchmarks and the demo world (nothing downloads).

A byte-level BPE tokenizer is trained on the spot with the ``tokenizers`` library, so any text
tokenizes; models are Llama-architecture (or GPT-2 / Qwen2) built from a config and saved in
standard Hugging Face format, then loaded back through the same loader users use.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import yaml
from transformers import PreTrainedModel, PreTrainedTokenizerFast

EOS = "<|endoftext|>"
PAD = "<|pad|>"


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int = 512, whole_words: Sequence[str] = (),
                        word_weight: int = 200) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer; EOS is id 0 and PAD id 1.

    ``whole_words`` are counted ``word_weight`` extra times each, so that (vocabulary size
    permitting) each becomes one token after a space, as common words are in a pretrained
    tokenizer; from the training texts alone, rare words would be split into pieces.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS, PAD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    if whole_words:
        texts = itertools.chain(texts, [" " + " ".join(whole_words)] * word_weight)
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD, bos_token=None)


def make_model(
    tokenizer: PreTrainedTokenizerFast,
    arch: str = "llama",
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int | None = None,
    intermediate: int | None = None,
    max_positions: int = 512,
    vocab_rows: int | None = None,
    seed: int = 0,
    tie_embeddings: bool = False,
) -> PreTrainedModel:
    """A randomly initialised causal LM. ``vocab_rows`` > len(tokenizer) adds padding rows;
    ``tie_embeddings`` shares the input and output embeddings (Llama and Qwen2 only)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    V = vocab_rows or len(tokenizer)
    common = dict(vocab_size=V, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                  bos_token_id=tokenizer.eos_token_id)
    if arch == "llama":
        cfg = LlamaConfig(hidden_size=hidden, intermediate_size=intermediate or 4 * hidden, num_hidden_layers=layers,
                          num_attention_heads=heads, num_key_value_heads=kv_heads or heads,
                          max_position_embeddings=max_positions, tie_word_embeddings=tie_embeddings, **common)
        model = LlamaForCausalLM(cfg)
    elif arch == "qwen2":
        cfg = Qwen2Config(hidden_size=hidden, intermediate_size=intermediate or 4 * hidden, num_hidden_layers=layers,
                          num_attention_heads=heads, num_key_value_heads=kv_heads or heads,
                          max_position_embeddings=max_positions, **common)
        model = Qwen2ForCausalLM(cfg)
    elif arch == "gpt2":
        cfg = GPT2Config(n_embd=hidden, n_layer=layers, n_head=heads, n_positions=max_positions, **common)
        model = GPT2LMHeadModel(cfg)
    else:
        raise ValueError(f"unknown arch {arch!r}")
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval()


def save(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, path: str | Path) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def write_model_set(path: str | Path, base: str | Path, objectives: Mapping[str, str | Path | dict], **extra) -> Path:
    """Write a model-set YAML file. ``objectives`` maps a name to a path or to a full spec dict."""
    data = {"base": {"path": str(base)},
            "objectives": {k: (v if isinstance(v, dict) else {"path": str(v)}) for k, v in objectives.items()}}
    data.update(extra)
    path = Path(path)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
