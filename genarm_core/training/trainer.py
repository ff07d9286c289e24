"""Training an autoregressive reward model (ARM) with the GenARM loss, on ``transformers.Trainer``.

The Trainer brings checkpointing and resuming, gradient accumulation, mixed precision, logging
and multi-GPU runs through ``accelerate``; this module adds only what is GenARM's own: the data
encoding (one prompt format for the whole run, prompt masked, EOS appended, token budgets), the
loss of ``genarm_core.decoding.math`` and the files that let decoding feed the ARM what it learned on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import yaml
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase, Trainer, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from genarm_core.models.formats import HH_TEMPLATE
from genarm_core.models.loading import quiet_peft
from genarm_core.decoding.math import arm_loss
from ..progress import Report, TrainerProgress, console_report
from genarm_core.models.scoring import pad_right, response_logps
from .config import ARMTrainingConfig
from .data import PreferencePair

logger = logging.getLogger(__name__)

#: Attention projection names across the common families (Llama/Qwen2/Mistral, GPT-2, GPT-NeoX).
ATTENTION_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "c_attn", "query_key_value")
MLP_PROJECTIONS = ("gate_proj", "up_proj", "down_proj")


# ------------------------------------------------------------------------------------- encoding

def resolve_format(cfg: ARMTrainingConfig, pairs: Sequence[PreferencePair]) -> ARMTrainingConfig:
    """The run's one prompt format, made explicit: with none given, data that holds chats (HH
    transcripts, OASST, conversational TRL) is in HH's transcript format, so the ARM records
    ``HH_TEMPLATE`` and decoding wraps every prompt in it too."""
    if cfg.template is None and not cfg.chat_template and any(not isinstance(p.prompt, str) for p in pairs):
        return dataclasses.replace(cfg, template=HH_TEMPLATE)
    return cfg


def encode_pair(pair: PreferencePair, tokenizer: PreTrainedTokenizerBase, cfg: ARMTrainingConfig) -> dict[str, list[int]]:
    """Token ids of prompt, chosen and rejected, in the run's prompt format (``cfg.prompt_format``,
    the same ``PromptFormat.encode`` that decoding calls). Responses start as that format expects
    (``normalise_response``) and end with EOS unless ``response_eos`` is off.

    Budgets are counted in tokens: the prompt keeps its last ``max_prompt_tokens`` (the part next to
    the answer) and a response keeps its last ``max_response_tokens`` (its end and EOS).
    """
    fmt = cfg.prompt_format
    p = fmt.encode(pair.prompt, tokenizer)[-cfg.max_prompt_tokens:]
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None and cfg.response_eos else []

    def resp(text: str) -> list[int]:
        ids = tokenizer(fmt.normalise_response(text), add_special_tokens=False)["input_ids"]
        return (ids + eos)[-cfg.max_response_tokens:]

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

class _PairTrainer(Trainer):
    """A ``transformers.Trainer`` over preference batches [chosen rows; rejected rows] whose logs also
    carry the mean reward accuracy and margin of the training batches since the last log (as TRL's
    preference trainers do), so a curve shows the model learning."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._since_log: dict[str, list[float]] = {"reward_accuracy": [], "reward_margin": []}

    def _track(self, model, chosen: torch.Tensor, rejected: torch.Tensor) -> None:
        if model.training:
            margin = (chosen - rejected).detach().float()
            self._since_log["reward_accuracy"].append((margin > 0).float().mean().item())
            self._since_log["reward_margin"].append(margin.mean().item())

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if "loss" in logs and self._since_log["reward_accuracy"]:
            for key, values in self._since_log.items():
                logs[key] = sum(values) / len(values)
                values.clear()
        super().log(logs, *args, **kwargs)


class ARMTrainer(_PairTrainer):
    """``transformers.Trainer`` with the GenARM loss; batches are [chosen rows; rejected rows]."""

    def __init__(self, *args: Any, beta_r: float, length_normalize: bool = False, sft_weight: float = 0.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.beta_r = beta_r
        self.sft_weight = sft_weight
        self.length_normalize = length_normalize

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        logps = response_logps(model, inputs["input_ids"], inputs["attention_mask"], inputs["response_mask"],
                               self.length_normalize)
        chosen, rejected = logps.chunk(2)
        loss = arm_loss(chosen, rejected, self.beta_r)
        if self.sft_weight:
            n_chosen = inputs["response_mask"][:, 1:].sum(-1).chunk(2)[0].clamp_min(1)
            loss = loss + self.sft_weight * (-chosen / n_chosen).mean()
        self._track(model, chosen, rejected)
        return (loss, {"chosen": chosen, "rejected": rejected}) if return_outputs else loss


class RMTrainer(_PairTrainer):
    """``transformers.Trainer`` for a trajectory reward model: the Bradley–Terry loss
    −log σ(r(x, y_w) − r(x, y_l)), r read at each sequence's last token (``reward_models``);
    batches are [chosen rows; rejected rows], as for ARMs."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        from genarm_core.models.reward_models import sequence_rewards

        rewards = sequence_rewards(model, inputs["input_ids"], inputs["attention_mask"])
        chosen, rejected = rewards.chunk(2)
        loss = -torch.nn.functional.logsigmoid(chosen - rejected).mean()
        self._track(model, chosen, rejected)
        return (loss, {"chosen": chosen, "rejected": rejected}) if return_outputs else loss


def _length_batches(encoded: list[dict[str, list[int]]], max_tokens: int) -> list[list[int]]:
    """Indices of pairs grouped into batches of at most ``max_tokens`` padded tokens (2 rows a pair),
    after sorting by length, so that little is padding and no batch outgrows the budget."""
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]["prompt_ids"]) + max(
        len(encoded[i]["chosen_ids"]), len(encoded[i]["rejected_ids"])))
    batches: list[list[int]] = []
    longest = 0
    for i in order:
        e = encoded[i]
        n = len(e["prompt_ids"]) + max(len(e["chosen_ids"]), len(e["rejected_ids"]))
        if batches and 2 * (len(batches[-1]) + 1) * max(longest, n) <= max_tokens:
            batches[-1].append(i)
            longest = max(longest, n)
        else:
            batches.append([i])
            longest = n
    return batches


@torch.no_grad()
def evaluate_pairs(model: PreTrainedModel, encoded: list[dict[str, list[int]]], pad_id: int, max_tokens: int = 8192,
                   length_normalize: bool = False, reward_model: bool = False,
                   groups: list[str] | None = None) -> dict[str, Any]:
    """Pairwise accuracy (share with r(chosen) > r(rejected)) and mean margin r(chosen) − r(rejected).

    r is the ARM's Σ log π over the response, or with ``reward_model`` the trajectory reward model's
    score at the last token. With no pairs the accuracy and margin are ``None`` (JSON ``null``), never NaN.
    ``groups`` (one per pair; "" for none): the accuracy of each named group too, under ``by_group``.
    """
    if not encoded:
        return {"pairwise_accuracy": None, "mean_margin": None, "pairs": 0}
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    margins = [0.0] * len(encoded)
    for idx in _length_batches(encoded, max_tokens):
        batch = collate_pairs([encoded[i] for i in idx], pad_id)
        batch = {k: v.to(device) for k, v in batch.items()}
        if reward_model:
            from genarm_core.models.reward_models import sequence_rewards

            logps = sequence_rewards(model, batch["input_ids"], batch["attention_mask"])
        else:
            logps = response_logps(model, batch["input_ids"], batch["attention_mask"], batch["response_mask"],
                                   length_normalize)
        chosen, rejected = logps.float().chunk(2)
        for i, m in zip(idx, (chosen - rejected).cpu().tolist()):
            margins[i] = m
    model.train(was_training)
    out = {"pairwise_accuracy": sum(m > 0 for m in margins) / len(margins), "mean_margin": sum(margins) / len(margins),
           "pairs": len(margins)}
    named = sorted({g for g in groups or [] if g})
    if named:
        out["by_group"] = {g: {"pairwise_accuracy": sum(m > 0 for m, h in zip(margins, groups) if h == g)
                               / sum(h == g for h in groups), "pairs": sum(h == g for h in groups)} for g in named}
    return out


def _attention_targets(model: PreTrainedModel) -> list[str]:
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    found = [t for t in ATTENTION_PROJECTIONS if t in names]
    if not found:
        raise ValueError(f"no attention projections found for LoRA in {type(model).__name__}")
    return found


def untie_embeddings(model: PreTrainedModel) -> bool:
    """Give a model with tied input and output embeddings an output embedding of its own (a copy,
    so its predictions are unchanged); it saves and loads as an untied model. False if not tied."""
    out, inp = model.get_output_embeddings(), model.get_input_embeddings()
    if out is None or out.weight is not inp.weight:
        return False
    model.config.tie_word_embeddings = False
    out.weight = torch.nn.Parameter(inp.weight.detach().clone())
    return True


def _with_lora(model: PreTrainedModel, cfg: ARMTrainingConfig, task_type: str = "CAUSAL_LM") -> PreTrainedModel:
    """LoRA on the attention (and with ``lora_mlp`` the MLP) projections; ``SEQ_CLS`` also trains the
    score head of a reward model in full (PEFT's ``modules_to_save``)."""
    from peft import LoraConfig, get_peft_model

    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    targets = _attention_targets(model) + [t for t in MLP_PROJECTIONS if cfg.lora_mlp and t in names]
    n_layers = getattr(model.config, "num_hidden_layers", None)
    layers = None
    if cfg.lora_top_layers and n_layers:
        layers = list(range(max(0, n_layers - cfg.lora_top_layers), n_layers))
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, target_modules=targets,
                      layers_to_transform=layers, task_type=task_type)
    with quiet_peft():
        return get_peft_model(model, lora)


def _describe(result: dict[str, Any]) -> str:
    if not result["pairs"]:
        return "no held-out pairs"
    return f"accuracy {result['pairwise_accuracy']:.3f}, margin {result['mean_margin']:.3f} on {result['pairs']} held-out pairs"


def _advice(before: dict[str, Any], after: dict[str, Any]) -> str | None:
    """What to tell a researcher whose ARM did not learn, or None."""
    if not after["pairs"]:
        return ("no held-out pairs, so nothing says whether the ARM learned: pass --eval-data or keep "
                "--eval-fraction above 0")
    if after["pairwise_accuracy"] <= before["pairwise_accuracy"]:
        return (f"held-out accuracy did not improve ({before['pairwise_accuracy']:.3f} -> {after['pairwise_accuracy']:.3f}): "
                "try more steps (--epochs, or a smaller --grad-accum), a higher --learning-rate, or check that the "
                "chosen and rejected responses really differ in the way the objective means")
    return None


def write_entry(out: Path, cfg: ARMTrainingConfig, section: str = "objectives") -> str:
    """``model_set_entry.yaml``: the lines to paste under ``objectives:`` (an ARM) or
    ``reward_models:`` (a trajectory reward model), with the prompt format."""
    spec: dict[str, Any] = {"path": cfg.base, "adapter": str(out)} if cfg.lora else {"path": str(out)}
    spec.update(cfg.prompt_format.to_dict())
    text = yaml.safe_dump({section: {cfg.objective: spec}}, sort_keys=False, allow_unicode=True)
    (out / "model_set_entry.yaml").write_text(text)
    return text


def train_arm(
    cfg: ARMTrainingConfig,
    train_pairs: Sequence[PreferencePair],
    out_dir: str | Path,
    eval_pairs: Sequence[PreferencePair] | None = None,
    resume: bool = False,
    progress: bool | Report = True,
    log: Callable[[str], Any] = print,
    reward_model: bool = False,
) -> dict[str, Any]:
    """Train one ARM (or, with ``reward_model``, a trajectory reward model: ``train_reward_model``)
    and save it to ``out_dir`` in a form a model-set file loads.

    ``out_dir`` receives the model (or LoRA adapter, whose config names its base), the tokenizer,
    ``training_config.json`` (the settings and the prompt format), ``metrics.json`` (held-out
    accuracy and margin before and after; ``null`` without held-out pairs), ``log_history.json``
    (the Trainer's logs: loss, learning rate, training reward accuracy and margin per logging
    step; the dashboard's Models tab plots it) and ``model_set_entry.yaml`` (the lines to paste
    under ``objectives:``, format included). Checkpoints go to ``out_dir/checkpoints`` and are
    resumed from with ``resume=True``.

    Args:
        progress: True for a bar of its own, False for none, or a ``Report`` (fraction, status)
            of a larger build's bar.

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
    cfg = resolve_format(cfg, [*train_pairs, *eval_pairs])

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
    if cfg.chat_template and not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"--chat-template: the tokenizer of {cfg.base} has no chat template")
    what = f"{cfg.objective} {'reward model' if reward_model else 'ARM'}"
    if reward_model:
        model = AutoModelForSequenceClassification.from_pretrained(cfg.base, num_labels=1, dtype=torch.float32)
        model.config.pad_token_id = pad_id
    else:
        model = AutoModelForCausalLM.from_pretrained(cfg.base, dtype=torch.float32)
    if cfg.untie_embeddings and not cfg.lora and not reward_model:
        untie_embeddings(model)
    if cfg.lora:
        model = _with_lora(model, cfg, "SEQ_CLS" if reward_model else "CAUSAL_LM")

    train_enc = [encode_pair(p, tokenizer, cfg) for p in train_pairs]
    eval_enc = [encode_pair(p, tokenizer, cfg) for p in eval_pairs]
    if not eval_enc:
        logger.warning("[%s] no held-out pairs: the accuracy cannot be measured", what)
    groups = [p.group for p in eval_pairs]
    before = evaluate_pairs(model, eval_enc, pad_id, cfg.eval_tokens, cfg.length_normalize, reward_model, groups)
    log(f"[{what}] before training: {_describe(before)}")

    steps_per_epoch = math.ceil(len(train_enc) / (cfg.batch_size * cfg.grad_accum))
    total_steps = max(1, math.ceil(steps_per_epoch * cfg.epochs))
    logging_steps = cfg.logging_steps or max(1, total_steps // 20)
    args = TrainingArguments(
        output_dir=str(out / "checkpoints"), per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.learning_rate, num_train_epochs=cfg.epochs,
        lr_scheduler_type="cosine", warmup_steps=int(round(cfg.warmup_ratio * total_steps)), seed=cfg.seed,
        save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=2, logging_steps=logging_steps,
        report_to=[], remove_unused_columns=False, disable_tqdm=True, bf16=cfg.bf16,
        activation_checkpointing=cfg.gradient_checkpointing, activation_checkpointing_kwargs={"use_reentrant": False},
        use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0, label_names=[],
    )
    common = {"model": model, "args": args, "train_dataset": train_enc, "data_collator": lambda f: collate_pairs(f, pad_id)}
    trainer = RMTrainer(**common) if reward_model else ARMTrainer(
        **common, beta_r=cfg.beta_r, length_normalize=cfg.length_normalize, sft_weight=cfg.sft_weight)
    # The Trainer's own printing (raw {'loss': ...} dicts) gives way to one bar with a readable postfix.
    for cb in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cb)
    close = None
    if progress is True:
        report, close = console_report(f"training the {what}")
    elif callable(progress):
        report = progress
    if progress:
        trainer.add_callback(TrainerProgress(report))
    checkpoint = True if resume and any((out / "checkpoints").glob("checkpoint-*")) else None
    t0 = time.perf_counter()
    try:
        trainer.train(resume_from_checkpoint=checkpoint)
    finally:
        if close is not None:
            close()
    seconds = time.perf_counter() - t0

    after = evaluate_pairs(model, eval_enc, pad_id, cfg.eval_tokens, cfg.length_normalize, reward_model, groups)
    log(f"[{what}] after training:  {_describe(after)} ({seconds:.1f} s)")
    advice = _advice(before, after)
    if advice:
        log(f"[{what}] note: {advice}")

    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)  # a PEFT adapter (its config names the base) or a full model
    tokenizer.save_pretrained(out)
    metrics = {"objective": cfg.objective, "before": before, "after": after, "train_pairs": len(train_enc),
               "train_seconds": seconds, "seconds_per_pair": seconds / (len(train_enc) * cfg.epochs),
               "steps": trainer.state.global_step, "kind": "lora" if cfg.lora else "full", "advice": advice,
               "model": "reward_model" if reward_model else "arm",
               "peak_memory_mib": _peak_memory_mib()}
    (out / "training_config.json").write_text(json.dumps({**cfg.to_dict(), "model": metrics["model"]}, indent=2))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1))
    write_entry(out, cfg, "reward_models" if reward_model else "objectives")
    return metrics


def train_reward_model(cfg: ARMTrainingConfig, train_pairs: Sequence[PreferencePair], out_dir: str | Path,
                       **kwargs: Any) -> dict[str, Any]:
    """Train a trajectory-level reward model (ARGS's and Best-of-N's r(x, y)) from the same data, prompt
    format, budgets, progress bar and files as an ARM: an ``AutoModelForSequenceClassification``
    with one output (LoRA with a trained score head, or full), the Bradley–Terry loss on the last
    token (``RMTrainer``), held-out pairwise accuracy before and after in ``metrics.json``, and a
    ``model_set_entry.yaml`` to paste under ``reward_models:``. ``beta_r``, ``sft_weight`` and
    ``length_normalize`` do not apply. Arguments as ``train_arm``."""
    return train_arm(cfg, train_pairs, out_dir, reward_model=True, **kwargs)


def _peak_memory_mib() -> float | None:
    """The process's peak resident memory (CPU, Linux/macOS) or the CUDA peak, in MiB."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (2**20 if sys.platform == "darwin" else 2**10)
    except (ImportError, OSError):
        return None


def training_record(folder: str | Path) -> dict[str, Any]:
    """What ``train_arm`` left beside an ARM: ``metrics`` (held-out accuracy before/after) and
    ``history`` (the Trainer's logs), each only if present; ``{}`` for an ARM trained elsewhere."""
    out: dict[str, Any] = {}
    for key, name in (("metrics", "metrics.json"), ("history", "log_history.json")):
        try:
            out[key] = json.loads((Path(folder) / name).read_text())
        except (OSError, ValueError):
            continue
    return out
