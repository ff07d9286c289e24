"""The settings of one ARM training run: a dataclass whose ``help`` texts are the CLI's help.

``training_config.json`` beside every trained ARM holds ``to_dict()``: the hyperparameters and
the prompt format the ARM was trained on, which ``model_set_entry.yaml`` repeats so that
decoding feeds the ARM exactly that format.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from genarm_core.models.formats import FormatError, PromptFormat


@dataclass
class ARMTrainingConfig:
    """Hyperparameters of one ARM's training run (saved beside the model)."""

    objective: str = field(metadata={"help": "Objective name, e.g. helpfulness."})
    base: str = field(metadata={"help": "Base / SFT model the ARM is initialised from (folder or hub id)."})
    beta_r: float = field(default=0.05, metadata={"help": "β_r of the ARM loss (paper: 0.05 on HH-RLHF)."})
    learning_rate: float = field(default=5e-4, metadata={"help": "Peak learning rate (paper: 5e-4 LoRA, 5e-7 full)."})
    epochs: float = field(default=1.0, metadata={"help": "Passes over the training pairs."})
    batch_size: int = field(default=8, metadata={"help": "Pairs per device step."})
    grad_accum: int = field(default=4, metadata={"help": "Gradient accumulation steps (effective batch = batch size × this × devices)."})
    lora: bool = field(default=True, metadata={"help": "Train a LoRA adapter; --no-lora trains every weight."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_mlp: bool = field(default=False, metadata={"help": "Adapt the MLP projections too, not only attention."})
    untie_embeddings: bool = field(default=False, metadata={"help": "With --no-lora, on a base whose input and output embeddings are one matrix (tied, as in SmolLM2): give the ARM an output embedding of its own, initialised from the shared one. Tied, the loss moves how the ARM reads every token along with what it predicts; on the demo world the harmlessness ARM then collapsed into repeating one word."})
    lora_top_layers: int | None = field(default=None, metadata={"help": "Adapt only the top N transformer layers; the backward pass stops below them (faster). Default: all."})
    length_normalize: bool = field(default=False, metadata={"help": "Mean instead of sum of response log-probs (off in the paper)."})
    gradient_checkpointing: bool = field(default=True, metadata={"help": "Recompute each layer's activations in the backward pass instead of keeping them: a fraction of the memory for about a third more compute. --no-gradient-checkpointing keeps them (faster for short sequences or small models)."})
    sft_weight: float = field(default=0.0, metadata={"help": "Add this × the chosen responses' mean token NLL to the loss (TRL's rpo_alpha): keeps the ARM a fluent model of preferred answers. 0 = the paper's loss."})
    max_prompt_tokens: int = field(default=384, metadata={"help": "Prompt budget in tokens; longer prompts keep their end."})
    max_response_tokens: int = field(default=256, metadata={"help": "Response budget in tokens; longer responses keep their end."})
    response_eos: bool = field(default=True, metadata={"help": "End every response with EOS; --no-response-eos when responses are openings cut short (write EOS into the text of complete ones)."})
    template: str | None = field(default=None, metadata={"help": "Prompt template with {prompt}, as in a model-set file. Default: HH's '\\n\\nHuman: {prompt}\\n\\nAssistant:' when the data has chats or HH transcripts, else the prompt as it is."})
    chat_template: bool = field(default=False, metadata={"help": "Render every prompt through the base tokenizer's chat template (HH transcripts become messages; responses lose HH's leading space)."})
    system_prompt: str | None = field(default=None, metadata={"help": "With --chat-template: a system message put first unless a chat has its own. Default: the template's own default."})
    eval_fraction: float = field(default=0.1, metadata={"help": "Share of pairs held out for evaluation when no eval file is given."})
    eval_tokens: int = field(default=8192, metadata={"help": "Tokens per evaluation batch (padded rows × length); pairs are sorted by length first."})
    warmup_ratio: float = field(default=0.03, metadata={"help": "Share of steps spent warming up the cosine schedule."})
    seed: int = field(default=0, metadata={"help": "Seed for the split, initialisation and data order."})
    bf16: bool = field(default=False, metadata={"help": "bfloat16 mixed precision (GPU)."})
    save_steps: int = field(default=200, metadata={"help": "Checkpoint every N optimiser steps (resumable)."})
    logging_steps: int | None = field(default=None, metadata={"help": "Log every N optimiser steps. Default: about 20 points per run (at least every step of a short one)."})
    max_pairs: int | None = field(default=None, metadata={"help": "Use at most this many training pairs."})

    def __post_init__(self) -> None:
        checks = [
            (self.beta_r > 0, "beta_r must be > 0"), (self.learning_rate > 0, "learning_rate must be > 0"),
            (self.epochs > 0, "epochs must be > 0"), (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.grad_accum >= 1, "grad_accum must be >= 1"), (self.lora_r >= 1, "lora_r must be >= 1"),
            (0 <= self.lora_dropout < 1, "lora_dropout must be in [0, 1)"),
            (self.lora_top_layers is None or self.lora_top_layers >= 1, "lora_top_layers must be >= 1"),
            (self.sft_weight >= 0, "sft_weight must be >= 0"),
            (self.max_prompt_tokens >= 1 and self.max_response_tokens >= 1, "token budgets must be >= 1"),
            (0 <= self.eval_fraction < 1, "eval_fraction must be in [0, 1)"),
            (self.eval_tokens >= 1, "eval_tokens must be >= 1"),
            (self.logging_steps is None or self.logging_steps >= 1, "logging_steps must be >= 1"),
            (bool(self.objective.strip()), "objective must be named"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)
        try:
            self.prompt_format
        except FormatError as exc:
            raise ValueError(str(exc)) from None

    @property
    def prompt_format(self) -> PromptFormat:
        return PromptFormat(self.template, self.chat_template, self.system_prompt)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "response_starts_with_space": self.prompt_format.response_starts_with_space}

    @classmethod
    def from_dict(cls, recorded: dict[str, Any]) -> "ARMTrainingConfig":
        """The settings of a recorded ``training_config.json``: what ``to_dict()`` and the trainer
        wrote beside them (``response_starts_with_space``, the ``model`` kind) is derived, not a setting."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in recorded.items() if k in names})
