"""Shared pieces of the benchmarks: model builders, a timer, and the result table."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch


@dataclass
class Result:
    name: str
    value: float
    unit: str
    target: str = ""
    ok: bool | None = None
    detail: str = ""


@dataclass
class Report:
    rows: list[Result] = field(default_factory=list)

    def add(self, r: Result) -> Result:
        self.rows.append(r)
        mark = "" if r.ok is None else ("  [met]" if r.ok else "  [NOT met]")
        print(f"  {r.name}: {_fmt(r)}{'  target ' + r.target if r.target else ''}{mark}"
              f"{'  (' + r.detail + ')' if r.detail else ''}", flush=True)
        return r

    def markdown(self) -> str:
        lines = ["| measurement | value | target | met |", "| --- | --- | --- | --- |"]
        for r in self.rows:
            met = "" if r.ok is None else ("yes" if r.ok else "**no**")
            value = _fmt(r) + (f" ({r.detail})" if r.detail else "")
            lines.append(f"| {r.name} | {value} | {r.target} | {met} |")
        return "\n".join(lines)


def _fmt(r: Result) -> str:
    return f"{r.value:.3f}x" if r.unit == "x" else f"{r.value:.3g} {r.unit}"


def median_time(fn: Callable[[], object], reps: int, warmup: int = 1) -> float:
    """Median wall time of ``fn`` over ``reps`` runs after ``warmup`` runs (seconds)."""
    for _ in range(warmup):
        fn()
        sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def marginal_time(run: Callable[[int], object], n: int, reps: int, short: int = 1) -> float:
    """Seconds per generated token with prefill excluded: (t(n) − t(short)) / (n − short), where
    ``run(k)`` generates k tokens; medians of ``reps``."""
    return (median_time(lambda: run(n), reps) - median_time(lambda: run(short), reps)) / (n - short)


def per_token_time(engine, rows, n: int, reps: int) -> float:
    """``marginal_time`` of the engine generating ``rows`` (sampling, no early stop)."""
    from genarm_core.models.config import DecodingConfig

    return marginal_time(lambda k: engine.generate(rows, DecodingConfig(temperature=1.0, max_new_tokens=k, seed=0,
                                                                       stop_at_eos=False)), n, reps)


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def word_tokenizer(vocab_size: int):
    """A word-level tokenizer of exactly ``vocab_size`` entries (timing needs the size, not the words)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<|endoftext|>": 0, "<|pad|>": 1, "<unk>": 2}
    vocab.update({f"w{i}": i for i in range(3, vocab_size)})
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|pad|>")


SIZES = {
    # name: (hidden, layers, heads, kv_heads, intermediate)
    "100M": (768, 12, 12, 12, 2048),
    "25M": (384, 6, 6, 6, 1024),
    "1B": (2048, 16, 32, 8, 8192),
    "7B": (4096, 32, 32, 32, 11008),
}


def build_set(root: Path, base: str, arms: list[str], vocab: int = 16000, dtype: str = "float32", device: str = "cpu",
              lora_arms: int = 0) -> Path:
    """Save random-initialised Llama models and a model-set file; returns the file."""
    import yaml

    from genarm_core.models.tiny import make_model, save

    tok = word_tokenizer(vocab)

    def model(size: str, seed: int):
        h, l, nh, kv, inter = SIZES[size]
        m = make_model(tok, hidden=h, layers=l, heads=nh, kv_heads=kv, intermediate=inter, max_positions=2048, seed=seed)
        return m.to(getattr(torch, dtype))

    base_dir = save(model(base, 0), tok, root / f"base-{base}")
    objectives = {}
    for i, size in enumerate(arms):
        d = save(model(size, i + 1), tok, root / f"arm{i}-{size}")
        objectives[f"objective{i}"] = {"path": str(d), "dtype": dtype, "device": device}
    if lora_arms:
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM

        for i in range(lora_arms):
            m = AutoModelForCausalLM.from_pretrained(base_dir)
            pm = get_peft_model(m, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                                              init_lora_weights=False))
            out = root / f"lora{i}"
            pm.save_pretrained(out)
            objectives[f"lora{i}"] = {"path": str(base_dir), "adapter": str(out), "dtype": dtype, "device": device}
    f = root / f"set-{base}-{'-'.join(arms) or 'none'}-{lora_arms}.yaml"
    f.write_text(yaml.safe_dump({"base": {"path": str(base_dir), "dtype": dtype, "device": device},
                                 "objectives": objectives}))
    return f


def prompt_of(n_tokens: int) -> str:
    return " ".join(f"w{3 + (i * 37) % 5000}" for i in range(n_tokens))
