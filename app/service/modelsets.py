"""The model sets a server offers: loading, switching, and what the Models tab shows about them."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pandas as pd

from genarm_core.models.builtin import evaluation_prompts, evaluation_records
from genarm_core.models.config import ModelSetConfig, ObjectiveSpec
from genarm_core.decoding.engine import GenARMEngine
from genarm_core.models.loading import ModelSet, ModelSetError, load_model_set
from genarm_core.threads import ComputeThread
from genarm_core.training.trainer import training_record

from .errors import UserError


def human_count(n: int) -> str:
    """1310720 -> '1.31M'; 134515008 -> '135M'; 950 -> '950'."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            value = n / size
            return f"{value:.3g}{unit}"
    return str(n)


class ModelSets:
    """The loaded set and its engine, and the files of the others the server allows.

    The browser can choose among ``files`` by name, never name a path of its own. The lock keeps
    two switches from racing; generations are serialised by the app's queue. Loading, decoding and
    studies run on ``compute``, one thread for all of the server's model work (``ComputeThread``:
    torch's OpenMP teams of many request threads would slow every decode step).
    """

    def __init__(self, files: dict[str, Path], initial: str | None = None):
        if not files:
            raise ValueError("at least one model set is needed")
        self.files = dict(files)
        self._lock = threading.Lock()
        self.compute = ComputeThread()
        self.models: ModelSet | None = None
        self.engine: GenARMEngine | None = None
        self.current = ""
        self.load(initial or next(iter(self.files)))

    def load(self, name: str) -> None:
        """Load set ``name`` (the old one stays if the new one fails to load)."""
        if name not in self.files:
            raise UserError(f"unknown model set {name!r}; choose one of {sorted(self.files)}")
        with self._lock:
            try:
                models = self.compute.call(load_model_set, self.files[name])
            except (ModelSetError, ValueError) as exc:
                raise UserError(f"model set {name!r} could not be loaded: {exc}") from None
            old = self.models
            self.models, self.engine, self.current = models, self.compute.call(GenARMEngine, models), name
            if old is not None:
                self.compute.call(old.close)

    @property
    def config(self) -> ModelSetConfig:
        assert self.models is not None
        return self.models.config

    @property
    def objectives(self) -> list[str]:
        return self.config.objective_names

    def objectives_of_all_sets(self) -> dict[str, ObjectiveSpec]:
        """Every objective of every set this server offers (the loaded set's first), each with the
        settings of the first set that names it: the page lays out one slider per objective and
        shows those of the loaded set, so switching sets needs no new page."""
        out: dict[str, ObjectiveSpec] = {o.name: o for o in self.config.objectives}
        for name, path in self.files.items():
            if name == self.current:
                continue
            try:
                cfg = ModelSetConfig.from_file(path)
            except ValueError:
                continue  # a broken file is reported when someone tries to load it
            for o in cfg.objectives:
                out.setdefault(o.name, o)
        return out

    def describe(self) -> pd.DataFrame:
        """The loaded models for people: sizes as 135M, formats in words."""
        rows = []
        for d in self.models.describe():
            fmt = d["format"]
            shown = "chat template" + (f" (system: {fmt['system_prompt']!r})" if "system_prompt" in fmt else "") \
                if fmt.get("chat_template") else (repr(fmt["template"]) if fmt.get("template") else "plain text")
            rows.append({"model": d["name"], "role": d["role"], "architecture": d["architecture"],
                         "parameters": human_count(d["parameters"]), "dtype": d["dtype"], "device": d["device"],
                         "vocabulary": human_count(d["vocab"]), "prompt format": shown,
                         "weights": d["adapter"] or d["path"]})
        return pd.DataFrame(rows)

    def info(self) -> str:
        m = self.models
        text = (f"**{self.config.name}** from `{Path(self.files[self.current]).name}` · shared vocabulary "
                f"{human_count(m.vocab_size)} tokens · context {human_count(m.max_context())} tokens · max new tokens "
                f"on this server: {self.config.max_new_tokens_cap}")
        if self.config.description:
            text += f"\n\n{self.config.description}"
        for w in m.warnings:
            text += f"\n\n⚠️ {w}"
        return text

    def training_logs(self) -> dict[str, dict[str, Any]]:
        """Per loaded ARM, what its training left beside it (metrics, history); ARMs trained
        elsewhere simply have none."""
        out = {}
        for name, arm in self.models.arms.items():
            record = training_record(arm.spec.adapter or arm.spec.path)
            if record:
                out[name] = record
        return out

    def evaluation_records(self, n: int) -> list[dict[str, Any]] | None:
        """Held-out prompts of a built-in set with their fields (None for a set that ships none)."""
        return evaluation_records(self.files[self.current], n)

    def token_budget(self) -> int:
        """The most row-tokens (rows × (prompt + new tokens)) one request may ask of the KV caches: the
        set's ``max_batch_tokens``, else what half the machine's memory (the GPU's free memory, for a set
        on CUDA) holds at the set's KV bytes per row-token, counting every model on every row."""
        if self.config.max_batch_tokens:
            return self.config.max_batch_tokens
        return max(1, int(available_memory(self.models.base.device) * 0.5) // self.models.kv_bytes_per_token())

    def evaluation_prompts(self, n: int) -> list[str] | None:
        """Held-out prompts of a built-in set (None for a set that ships none)."""
        return evaluation_prompts(self.files[self.current], n)


def available_memory(device: Any) -> int:
    """Bytes a request's KV caches may use on ``device``: the GPU's free memory, or the machine's RAM."""
    if getattr(device, "type", str(device)) == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # not POSIX: assume a small machine
        return 8 * 2**30
