"""Training an autoregressive reward model (ARM) with the GenARM loss, on ``transformers.Trainer``.

The Trainer brings checkpointing and resuming, gradient accumulation, mixed precision, logging
and multi-GPU runs through ``accelerate``; this module adds only what is GenARM's own: the data
encoding (prompt masked, EOS appended, token budgets) and the loss of ``genarm_core.math``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase, Trainer, TrainingArguments

from ..loading import encode_prompt
from ..math import arm_loss
from ..scoring import pad_right, response_logps
from .data import PreferencePair

#: Attention projection names across the common families (Llama/Qwen2/Mistral, GPT-2, GPT-NeoX).
ATTENTION_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "c_attn", "query_key_value")


@dataclass
class ARMTrainingConfig:
    """Hyperparameters of one ARM's training run (saved beside the model)."""

    objective: str = field(metadata={"help": "Objective name, e.g. helpfulness."})
    base: str = field(metadata={"help": "Base / SFT model the ARM is initialised from (folder or hub id)."})
    beta_r: float = field(default=0.05, metadata={"help": "β_r of the ARM loss (paper: 0.05 on HH-RLHF)."})
    learning_rate: float = field(default=5e-4, metadata={"help": "Peak learning rate (paper: 5e-4 LoRA, 5e-7 full)."})
    epochs: float = field(default=1.0, metadata={"help": "Passes over the training pairs."})
    batch_size: int = field(default=8, metadata={"help": "Pairs per device step."})
    grad_accum: int = field(default=4, metadata={"help": "Gradient accumulation steps (effective batch = batch_size × grad_accum × devices)."})
    lora: bool = field(default=True, metadata={"help": "Train a LoRA adapter (r, alpha, dropout below) instead of every weight."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    length_normalize: bool = field(default=False, metadata={"help": "Mean instead of sum of response log-probs (off in the paper)."})
    max_prompt_tokens: int = field(default=384, metadata={"help": "Prompt budget in tokens; longer prompts keep their end."})
    max_response_tokens: int = field(default=256, metadata={"help": "Response budget in tokens; longer responses keep their end."})
    template: str | None = field(default=None, metadata={"help": "Prompt template with {prompt}, as in the model-set file."})
    eval_fraction: float = field(default=0.1, metadata={"help": "Share of pairs held out for evaluation when no eval file is given."})
    warmup_ratio: float = field(default=0.03, metadata={"help": "Share of steps spent warming up the cosine schedule."})
    seed: int = field(default=0, metadata={"help": "Seed for the split, initialisation and data order."})
    bf16: bool = field(default=False, metadata={"help": "bfloat16 mixed precision (GPU)."})
    save_steps: int = field(default=200, metadata={"help": "Checkpoint every N optimiser steps (resumable)."})
    logging_steps: int = field(default=10, metadata={"help": "Log every N optimiser steps."})
    max_pairs: int | None = field(default=None, metadata={"help": "Use at most this many training pairs."})

    def __post_init__(self) -> None:
        checks = [
            (self.beta_r > 0, "beta_r must be > 0"), (self.learning_rate > 0, "learning_rate must be > 0"),
            (self.epochs > 0, "epochs must be > 0"), (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.grad_accum >= 1, "grad_accum must be >= 1"), (self.lora_r >= 1, "lora_r must be >= 1"),
            (0 <= self.lora_dropout < 1, "lora_dropout must be in [0, 1)"),
            (self.max_prompt_tokens >= 1 and self.max_response_tokens >= 1, "token budgets must be >= 1"),
            (0 <= self.eval_fraction < 1, "eval_fraction must be in [0, 1)"),
            (self.template is None or "{prompt}" in self.template, "template must contain {prompt}"),
            (bool(self.objective.strip()), "objective must be named"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ------------------------------------------------------------------------------------- encoding

def encode_pair(pair: PreferencePair, tokenizer: PreTrainedTokenizerBase, cfg: ARMTrainingConfig) -> dict[str, list[int]]:
    """Token ids of prompt, chosen and rejected. Responses end with EOS (the ARM learns when to stop).

    Budgets are counted in tokens: the prompt keeps its last ``max_prompt_tokens`` (the part next to
    the answer) and a response keeps its last ``max_response_tokens`` (its end and EOS).
    """
    # Chat messages go through the tokenizer's chat template when it has one; text prompts through ``template``.
    p = encode_prompt(pair.prompt, tokenizer, cfg.template, chat_template=not isinstance(pair.prompt, str))
    p = p[-cfg.max_prompt_tokens:]
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []

    def resp(text: str) -> list[int]:
        return (tokenizer(text, add_special_tokens=False)["input_ids"] + eos)[-cfg.max_response_tokens:]

    return {"prompt_ids": p, "chosen_ids": resp(pair.chosen), "rejected_ids": resp(pair.rejected)}


def collate_pairs(features: list[dict[str, list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Stack chosen rows then rejected rows into one right-padded batch of 2B sequences."""
    seqs, prompt_lens = [], []
    for side in ("chosen_ids", "rejected_ids"):
        for f in features:
            seqs.append(f["prompt_ids"] + f[side])
            prompt_lens.append(len(f["prompt_ids"]))
    ids, mask = pad_right(seqs, pad_id)
    resp = mask.clone()
    for row, n in enumerate(prompt_lens):
        resp[row, :n] = 0
    return {"input_ids": ids, "attention_mask": mask, "response_mask": resp}


# ------------------------------------------------------------------------------------- trainer

class ARMTrainer(Trainer):
    """``transformers.Trainer`` with the GenARM loss; batches are [chosen rows; rejected rows]."""

    def __init__(self, *args: Any, beta_r: float, length_normalize: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.beta_r = beta_r
        self.length_normalize = length_normalize
        self._since_log: dict[str, list[float]] = {"reward_accuracy": [], "reward_margin": []}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        logps = response_logps(model, inputs["input_ids"], inputs["attention_mask"], inputs["response_mask"],
                               self.length_normalize)
        chosen, rejected = logps.chunk(2)
        loss = arm_loss(chosen, rejected, self.beta_r)
        if model.training:
            margin = (chosen - rejected).detach().float()
            self._since_log["reward_accuracy"].append((margin > 0).float().mean().item())
            self._since_log["reward_margin"].append(margin.mean().item())
        return (loss, {"chosen": chosen, "rejected": rejected}) if return_outputs else loss

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        """Training logs also carry the mean reward accuracy and margin of the training batches since
        the last log (as TRL's preference trainers do), so a curve shows the ARM learning."""
        if "loss" in logs and self._since_log["reward_accuracy"]:
            for key, values in self._since_log.items():
                logs[key] = sum(values) / len(values)
                values.clear()
        super().log(logs, *args, **kwargs)


@torch.no_grad()
def evaluate_pairs(model: PreTrainedModel, encoded: list[dict[str, list[int]]], pad_id: int, batch_size: int = 16,
                   length_normalize: bool = False) -> dict[str, float]:
    """Pairwise accuracy (share with r(chosen) > r(rejected)) and mean margin r(chosen) − r(rejected)."""
    if not encoded:
        return {"pairwise_accuracy": float("nan"), "mean_margin": float("nan"), "pairs": 0}
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    margins: list[float] = []
    for start in range(0, len(encoded), batch_size):
        batch = collate_pairs(encoded[start:start + batch_size], pad_id)
        batch = {k: v.to(device) for k, v in batch.items()}
        logps = response_logps(model, batch["input_ids"], batch["attention_mask"], batch["response_mask"], length_normalize)
        chosen, rejected = logps.float().chunk(2)
        margins.extend((chosen - rejected).cpu().tolist())
    model.train(was_training)
    return {"pairwise_accuracy": sum(m > 0 for m in margins) / len(margins), "mean_margin": sum(margins) / len(margins),
            "pairs": len(margins)}


def _attention_targets(model: PreTrainedModel) -> list[str]:
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    found = [t for t in ATTENTION_PROJECTIONS if t in names]
    if not found:
        raise ValueError(f"no attention projections found for LoRA in {type(model).__name__}")
    return found


def train_arm(
    cfg: ARMTrainingConfig,
    train_pairs: Sequence[PreferencePair],
    out_dir: str | Path,
    eval_pairs: Sequence[PreferencePair] | None = None,
    resume: bool = False,
    progress: bool = True,
    log: Any = print,
) -> dict[str, Any]:
    """Train one ARM and save it to ``out_dir`` in a form a model-set file loads.

    ``out_dir`` receives the model (or LoRA adapter, whose config names its base), the tokenizer,
    ``training_config.json``, ``metrics.json`` (accuracy and margin before and after),
    ``log_history.json`` (the Trainer's logs: loss, learning rate, training reward accuracy and
    margin per logging step; the dashboard's Models tab plots it) and
    ``model_set_entry.yaml`` (the lines to paste under ``objectives:``). Checkpoints go to
    ``out_dir/checkpoints`` and are resumed from with ``resume=True``.

    Returns:
        The metrics dict.
    """
    out = Path(out_dir)
    rng = random.Random(cfg.seed)
    train_pairs = list(train_pairs)
    if eval_pairs is None:
        rng.shuffle(train_pairs)
        n_eval = int(round(len(train_pairs) * cfg.eval_fraction))
        eval_pairs, train_pairs = train_pairs[:n_eval], train_pairs[n_eval:]
    if cfg.max_pairs is not None:
        train_pairs = train_pairs[: cfg.max_pairs]
    if not train_pairs:
        raise ValueError("no training pairs left after holding out the evaluation share")

    torch.manual_seed(cfg.seed)
    # Once the loss saturates, gradients underflow into denormal floats, which CPUs handle tens of
    # times slower; flushing them to zero changes nothing measurable and keeps steps fast. The flag
    # is per thread and torch's worker threads take it when they are created: a process that ran
    # parallel torch work before this call must set it itself first (the demo build does).
    torch.set_flush_denormal(True)
    tokenizer = AutoTokenizer.from_pretrained(cfg.base)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad_id is None:
        raise ValueError("the base tokenizer has neither a pad nor an EOS token")
    model = AutoModelForCausalLM.from_pretrained(cfg.base, dtype=torch.float32)
    if cfg.lora:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                          target_modules=_attention_targets(model), task_type="CAUSAL_LM")
        model = get_peft_model(model, lora)

    train_enc = [encode_pair(p, tokenizer, cfg) for p in train_pairs]
    eval_enc = [encode_pair(p, tokenizer, cfg) for p in eval_pairs]
    before = evaluate_pairs(model, eval_enc, pad_id, length_normalize=cfg.length_normalize)
    log(f"[{cfg.objective}] before training: accuracy {before['pairwise_accuracy']:.3f}, "
        f"margin {before['mean_margin']:.3f} on {before['pairs']} held-out pairs")

    steps_per_epoch = math.ceil(len(train_enc) / (cfg.batch_size * cfg.grad_accum))
    total_steps = max(1, math.ceil(steps_per_epoch * cfg.epochs))
    args = TrainingArguments(
        output_dir=str(out / "checkpoints"), per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.learning_rate, num_train_epochs=cfg.epochs,
        lr_scheduler_type="cosine", warmup_steps=int(round(cfg.warmup_ratio * total_steps)), seed=cfg.seed,
        save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=2, logging_steps=cfg.logging_steps,
        report_to=[], remove_unused_columns=False, disable_tqdm=not progress, bf16=cfg.bf16,
        use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0, label_names=[],
    )
    trainer = ARMTrainer(model=model, args=args, train_dataset=train_enc,
                         data_collator=lambda feats: collate_pairs(feats, pad_id),
                         beta_r=cfg.beta_r, length_normalize=cfg.length_normalize)
    checkpoint = None
    if resume and any((out / "checkpoints").glob("checkpoint-*")):
        checkpoint = True
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=checkpoint)
    seconds = time.perf_counter() - t0

    after = evaluate_pairs(model, eval_enc, pad_id, length_normalize=cfg.length_normalize)
    log(f"[{cfg.objective}] after training:  accuracy {after['pairwise_accuracy']:.3f}, "
        f"margin {after['mean_margin']:.3f} ({seconds:.1f} s)")

    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)  # a PEFT adapter (its config names the base) or a full model
    tokenizer.save_pretrained(out)
    metrics = {"objective": cfg.objective, "before": before, "after": after, "train_pairs": len(train_enc),
               "train_seconds": seconds, "steps": trainer.state.global_step, "kind": "lora" if cfg.lora else "full"}
    (out / "training_config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1))
    entry = (f"  {cfg.objective}:\n    path: {cfg.base}\n    adapter: {out}\n" if cfg.lora
             else f"  {cfg.objective}:\n    path: {out}\n")
    if cfg.template:
        entry += f"    template: {json.dumps(cfg.template)}\n"
    (out / "model_set_entry.yaml").write_text("objectives:\n" + entry)
    return metrics
