"""Loading a model set: the base causal LM and one ARM per objective, with their tokenizers.

Loading is safe by default: ``trust_remote_code`` stays off unless the file turns it on for
that model, safetensors are preferred, and transformers loads any pickled checkpoint with
``weights_only`` (torch's restricted unpickler). A failure anywhere releases what was loaded.
"""

from __future__ import annotations

import gc
import json
import logging
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from genarm_core.models.config import ModelSetConfig, ModelSpec
from genarm_core.decoding.skinny import pays as skinny_pays, use_skinny_products
from genarm_core.models.vocab import VocabularyMismatch, shared_vocab_size

log = logging.getLogger(__name__)

BASE = "base"


class ModelSetError(ValueError):
    """The model set cannot be loaded; the message names the model and the file."""


_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "auto": "auto"}


@dataclass
class LoadedModel:
    """One loaded causal LM and how it sees the prompt."""

    name: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    spec: ModelSpec
    #: Set when several members share one PeftModel: the LoRA adapter this member runs with
    #: ("__base__" = none). The engine then batches those members into one forward.
    adapter_name: str | None = None

    def __call__(self, **kwargs: Any) -> Any:
        """Forward pass as this member (selects its adapter when the model is shared)."""
        if self.adapter_name is not None:
            kwargs["adapter_names"] = [self.adapter_name] * kwargs["input_ids"].shape[0]
        return self.model(**kwargs)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def prompt_text(self, prompt: str | Sequence[dict[str, str]]) -> str:
        """The prompt as this model was trained to see it (its ``PromptFormat``)."""
        return self.spec.prompt_format.render(prompt, self.tokenizer)

    def encode_prompt(self, prompt: str | Sequence[dict[str, str]]) -> list[int]:
        return self.spec.prompt_format.encode(prompt, self.tokenizer)

    def describe(self) -> dict[str, Any]:
        n_params = sum(p.numel() for p in self.model.parameters())
        p = next(self.model.parameters())
        return {"name": self.name, "path": self.spec.path, "adapter": self.spec.adapter,
                "architecture": type(self.model).__name__, "parameters": n_params, "dtype": str(p.dtype).replace("torch.", ""),
                "device": str(p.device), "vocab": len(self.tokenizer), "format": self.spec.prompt_format.to_dict()}


@dataclass
class ModelSet:
    """The base model and one ARM per objective, ready for the engine.

    ``vocab_size`` is the shared vocabulary length V: every model's logits are sliced to it.
    """

    config: ModelSetConfig
    base: LoadedModel
    arms: dict[str, LoadedModel]
    vocab_size: int
    fingerprints: dict[str, str] = field(default_factory=dict)
    #: Things a researcher should know about this set that do not stop it from loading.
    warnings: list[str] = field(default_factory=list)
    #: trajectory-level reward models by objective (``reward_models:``), each sharing the base's tokenizer
    reward_models: dict[str, LoadedModel] = field(default_factory=dict)

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        return self.base.tokenizer

    @property
    def objectives(self) -> list[str]:
        return list(self.arms)

    def members(self) -> list[LoadedModel]:
        return [self.base, *self.arms.values()]

    def describe(self) -> list[dict[str, Any]]:
        return [{**m.describe(), "role": "base" if m.name == BASE else "ARM"} for m in self.members()]

    def kv_bytes_per_token(self) -> int:
        """Bytes of KV cache one batch row holds per token if it runs every model of the set (the base,
        each ARM, each reward model): 2 (keys, values) × layers × KV heads × head size × element size,
        summed. An upper bound: a row runs only the models its method needs."""
        total = 0
        for m in [*self.members(), *self.reward_models.values()]:
            c = m.model.config
            c = getattr(c, "text_config", None) or c
            layers = int(getattr(c, "num_hidden_layers", 0) or getattr(c, "n_layer", 0) or 0)
            heads = int(getattr(c, "num_attention_heads", 0) or getattr(c, "n_head", 0) or 1)
            kv_heads = int(getattr(c, "num_key_value_heads", 0) or heads)
            hidden = int(getattr(c, "hidden_size", 0) or getattr(c, "n_embd", 0) or 0)
            head_dim = int(getattr(c, "head_dim", 0) or (hidden // heads if heads else 0))
            element = next(m.model.parameters()).element_size()
            total += 2 * layers * kv_heads * head_dim * element
        return max(1, total)

    def max_context(self) -> int:
        """The smallest context length of any model (what a prompt plus completion may use)."""
        sizes = []
        for m in self.members():
            n = getattr(m.model.config, "max_position_embeddings", None) or getattr(m.model.config, "n_positions", None)
            if n:
                sizes.append(int(n))
        return min(sizes) if sizes else 10**9

    def close(self) -> None:
        """Drop the weights (e.g. before loading another set)."""
        self.arms.clear()
        self.reward_models.clear()
        _release()


@contextmanager
def quiet_peft() -> Iterator[None]:
    """peft asks transformers a deprecated question on every load; nothing for a user to act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
        yield


def _release() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _file_fingerprint(path: str) -> str | None:
    """A short content hash of a local model folder's weight and config files (None for hub ids)."""
    import hashlib

    p = Path(path)
    if not p.is_dir():
        return None
    h = hashlib.sha256()
    for f in sorted(p.iterdir()):
        if f.is_file() and f.suffix in {".safetensors", ".json", ".bin"}:
            h.update(f.name.encode())
            st = f.stat()
            h.update(f"{st.st_size}".encode())
            with f.open("rb") as fh:  # the first MiB is enough to tell versions apart, and stays fast
                h.update(fh.read(1 << 20))
    return h.hexdigest()[:16]


def _tokenizer_source(spec: ModelSpec, path: str) -> str:
    """Where a model's tokenizer comes from: ``tokenizer:``, else an adapter folder that has one, else ``path``."""
    if spec.tokenizer:
        return spec.tokenizer
    if spec.adapter and (Path(spec.adapter) / "tokenizer.json").exists():
        return spec.adapter
    return path


def _load_one(name: str, spec: ModelSpec, where: str) -> LoadedModel:
    """Load one model (and its tokenizer), applying a PEFT adapter when the spec names one."""
    path = spec.path
    if spec.adapter and not path:
        cfg_file = Path(spec.adapter) / "adapter_config.json"
        try:
            path = json.loads(cfg_file.read_text())["base_model_name_or_path"]
        except (OSError, KeyError, json.JSONDecodeError):
            raise ModelSetError(f"{where}: '{name}' names adapter {spec.adapter} without a 'path', and its "
                                f"adapter_config.json gives no base model") from None
    if Path(path).expanduser().is_absolute() and not Path(path).exists():
        raise ModelSetError(f"{where}: path of '{name}' does not exist: {path}")
    kwargs: dict[str, Any] = {"trust_remote_code": spec.trust_remote_code, "revision": spec.revision,
                              "dtype": _DTYPES[spec.dtype]}
    if spec.device_map:
        kwargs["device_map"] = spec.device_map
    tok_path = _tokenizer_source(spec, path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(tok_path, trust_remote_code=spec.trust_remote_code,
                                                  revision=spec.revision if tok_path == path else None)
    except Exception as exc:  # noqa: BLE001 - transformers raises many types; we rephrase them all
        raise ModelSetError(f"{where}: cannot load the tokenizer of '{name}' from {tok_path}: {exc}") from None
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except ValueError as exc:
        if "Unrecognized configuration class" in str(exc) or "AutoModelForCausalLM" in str(exc):
            raise ModelSetError(f"{where}: '{name}' at {path} is not a causal language model ({exc.args[0].splitlines()[0]})") from None
        raise ModelSetError(f"{where}: cannot load '{name}' from {path}: {exc}") from None
    except Exception as exc:  # noqa: BLE001
        raise ModelSetError(f"{where}: cannot load '{name}' from {path}: {exc}") from None
    if spec.adapter:
        try:
            from peft import PeftModel

            with quiet_peft():
                model = PeftModel.from_pretrained(model, spec.adapter)
            model = model.merge_and_unload()  # one plain model: same speed as a full ARM
        except Exception as exc:  # noqa: BLE001
            del model
            raise ModelSetError(f"{where}: cannot apply adapter {spec.adapter} to '{name}': {exc}") from None
    if not spec.device_map:
        model.to(spec.device)
    model.eval()
    model.requires_grad_(False)
    return LoadedModel(name=name, model=model, tokenizer=tokenizer, spec=spec)


def _load_reward_model(name: str, spec: ModelSpec, where: str) -> LoadedModel:
    """A trajectory reward model (``AutoModelForSequenceClassification``, one output), its adapter merged."""
    from transformers import AutoModelForSequenceClassification

    label = f"reward_models.{name}"
    path = spec.path
    if spec.adapter and not path:
        try:
            path = json.loads((Path(spec.adapter) / "adapter_config.json").read_text())["base_model_name_or_path"]
        except (OSError, KeyError, json.JSONDecodeError):
            raise ModelSetError(f"{where}: {label} names adapter {spec.adapter} without a 'path', and its "
                                f"adapter_config.json gives no base model") from None
    tok_path = _tokenizer_source(spec, path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(tok_path, trust_remote_code=spec.trust_remote_code)
        from transformers.utils import logging as hf_logging

        level = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # a LoRA reward model's head is in its adapter: "score MISSING" is expected
        try:
            model = AutoModelForSequenceClassification.from_pretrained(
                path, num_labels=1, dtype=_DTYPES[spec.dtype], trust_remote_code=spec.trust_remote_code,
                revision=spec.revision)
        finally:
            hf_logging.set_verbosity(level)
        if spec.adapter:
            from peft import PeftModel

            with quiet_peft():
                model = PeftModel.from_pretrained(model, spec.adapter).merge_and_unload()
    except Exception as exc:  # noqa: BLE001 - transformers and peft raise many types; we rephrase them all
        raise ModelSetError(f"{where}: cannot load {label} from {spec.adapter or path}: {exc}") from None
    if getattr(model.config, "num_labels", 1) != 1:
        raise ModelSetError(f"{where}: {label} has {model.config.num_labels} outputs; a reward model has one")
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model.to(spec.device)
    model.eval()
    model.requires_grad_(False)
    return LoadedModel(name=name, model=model, tokenizer=tokenizer, spec=spec)


def _shares_base(config: ModelSetConfig) -> bool:
    """Every ARM is a LoRA adapter on the base's own weights: load those weights once."""
    b = config.base
    return bool(config.objectives) and not b.device_map and all(
        o.model.adapter and o.model.path == b.path and o.model.dtype == b.dtype and o.model.device == b.device
        and o.model.revision == b.revision for o in config.objectives)


def _load_shared(config: ModelSetConfig, where: str) -> list[LoadedModel]:
    """Base + LoRA ARMs as one PeftModel holding every adapter (one copy of the base weights)."""
    from peft import PeftModel

    base = _load_one(BASE, config.base, where)
    peft_model, out = None, []
    try:
        for obj in config.objectives:
            if peft_model is None:
                with quiet_peft():
                    peft_model = PeftModel.from_pretrained(base.model, obj.model.adapter, adapter_name=obj.name)
            else:
                peft_model.load_adapter(obj.model.adapter, adapter_name=obj.name)
        out.append(LoadedModel(BASE, peft_model, base.tokenizer, config.base, adapter_name="__base__"))
        for obj in config.objectives:
            source = _tokenizer_source(obj.model, config.base.path)
            tok = base.tokenizer if source == config.base.path else AutoTokenizer.from_pretrained(source)
            out.append(LoadedModel(obj.name, peft_model, tok, obj.model, adapter_name=obj.name))
    except Exception as exc:  # noqa: BLE001
        base = peft_model = out = None  # the frame outlives the raise through the traceback; hold no weights
        raise ModelSetError(f"{where}: cannot load the LoRA adapters on the shared base: {exc}") from None
    peft_model.eval()
    peft_model.requires_grad_(False)
    return out


def _check_formats(base: LoadedModel, arms: list[LoadedModel], where: str) -> list[str]:
    """Refuse a chat-template format whose tokenizer has none; warn where an ARM expects its
    responses to begin otherwise than the base writes them (a space after ``Assistant:``)."""
    for m in [base, *arms]:
        if m.spec.chat_template and not getattr(m.tokenizer, "chat_template", None):
            raise ModelSetError(f"{where}: '{m.name}' asks for chat_template but its tokenizer has no chat template")
    base_space = base.spec.prompt_format.response_starts_with_space
    out = []
    for arm in arms:
        arm_space = arm.spec.prompt_format.response_starts_with_space
        if None not in (arm_space, base_space) and arm_space != base_space:
            out.append(f"ARM '{arm.name}' sees responses that begin {'with' if arm_space else 'without'} a space (its format "
                       f"{arm.spec.prompt_format.to_dict() or 'plain text'}), but the base writes them "
                       f"{'with' if base_space else 'without'} one: its score of the first token is off. Retrain it with "
                       f"the base's format (train-arm --chat-template for a chat base).")
    return out


def load_model_set(config: ModelSetConfig | str | Path, share_lora_base: bool = True) -> ModelSet:
    """Load every model of a set and check that their vocabularies agree.

    When every ARM is a LoRA adapter of the base's own weights (the paper's setting) and
    ``share_lora_base`` is on, the weights are loaded once and each member selects its adapter per
    row; otherwise each adapter is merged into its own copy.

    Raises:
        ConfigError: the file is invalid. ModelSetError: a model or tokenizer cannot be loaded, a
        model is not causal, or the tokenizers disagree (the message names a differing token).
    """
    if not isinstance(config, ModelSetConfig):
        config = ModelSetConfig.from_file(config)
    where = config.source or config.name
    loaded: list[LoadedModel] = []
    try:
        if share_lora_base and _shares_base(config):
            loaded.extend(_load_shared(config, where))
        else:
            loaded.append(_load_one(BASE, config.base, where))
            for obj in config.objectives:
                loaded.append(_load_one(obj.name, obj.model, where))
        vocabs = {m.name: m.tokenizer.get_vocab() for m in loaded}
        logit_sizes = {m.name: m.model.get_output_embeddings().weight.shape[0] for m in loaded}
        try:
            V = shared_vocab_size(vocabs, logit_sizes)
        except VocabularyMismatch as exc:
            raise ModelSetError(f"{where}: {exc}") from None
        fingerprints = {m.name: fp for m in loaded if (fp := _file_fingerprint(m.spec.adapter or m.spec.path))}
        base, *arms = loaded
        warnings = _check_formats(base, arms, where)
        for w in warnings:
            log.warning(w)
        rms = {}
        for name, spec in config.reward_models:
            rm = rms[name] = _load_reward_model(name, spec, where)
            loaded.append(rm)
            # ARGS scores the base's candidate tokens with it: the same ids must mean the same tokens
            try:
                shared_vocab_size({BASE: base.tokenizer.get_vocab(), f"reward_models.{name}": rm.tokenizer.get_vocab()},
                                  {BASE: V, f"reward_models.{name}": V})
            except VocabularyMismatch as exc:
                raise ModelSetError(f"{where}: {str(exc).replace('Use ARMs', 'Use reward models')}") from None
            if fp := _file_fingerprint(spec.adapter or spec.path):
                fingerprints[f"reward_models.{name}"] = fp
        models = {id(m.model): m.model for m in loaded}.values()
        on_cpu = any(next(model.parameters()).device.type == "cpu" for model in models)
        if on_cpu and skinny_pays():  # few-row products as W @ x^T on the CPU (``skinny``): same values, faster where it pays
            for model in models:
                use_skinny_products(model)
        return ModelSet(config=config, base=base, arms={m.name: m for m in arms}, vocab_size=V, fingerprints=fingerprints,
                        warnings=warnings, reward_models=rms)
    except BaseException:
        loaded.clear()  # nothing half-loaded stays in memory
        _release()
        raise
