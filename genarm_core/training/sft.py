"""Supervised fine-tuning of a causal LM on plain texts (the demo's base model is trained here)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import torch
from transformers import DataCollatorForLanguageModeling, PreTrainedModel, PreTrainedTokenizerBase, Trainer, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from ..progress import TrainerProgress, console_report


def train_causal_lm(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    out_dir: str | Path,
    epochs: float = 1.0,
    learning_rate: float = 3e-3,
    batch_size: int = 16,
    max_tokens: int = 128,
    seed: int = 0,
    progress: bool | Callable[[float, str], None] = True,
) -> float:
    """Next-token training on ``texts`` (each ends with EOS). Returns the final training loss.

    ``progress``: True for a bar of its own, False for none, or a build's stage reporter.
    """
    eos = tokenizer.eos_token or ""
    encoded = [{"input_ids": ids[:max_tokens]} for ids in tokenizer([t + eos for t in texts])["input_ids"]]
    args = TrainingArguments(
        output_dir=str(out_dir), per_device_train_batch_size=batch_size, num_train_epochs=epochs,
        learning_rate=learning_rate, lr_scheduler_type="cosine", warmup_steps=10, seed=seed, save_strategy="no",
        logging_steps=50, report_to=[], disable_tqdm=True, use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
    )
    collator = DataCollatorForLanguageModeling(tokenizer=tokenizer, mlm=False)
    trainer = Trainer(model=model, args=args, train_dataset=encoded, data_collator=collator)
    for cb in (PrinterCallback, ProgressCallback):  # one bar with a readable postfix instead of raw dicts
        trainer.remove_callback(cb)
    close = None
    if progress is True:
        report, close = console_report("training the base model")
    elif callable(progress):
        report = progress
    if progress:
        trainer.add_callback(TrainerProgress(report))
    try:
        result = trainer.train()
    finally:
        if close is not None:
            close()
    model.eval()
    return float(result.training_loss)
