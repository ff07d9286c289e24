"""Build (or find in the cache) the demo model set: tokenizer, base, one ARM per objective.

Uses the project's own code paths unchanged: ``tiny`` builds the tokenizer and model from a
config, ``training.sft`` trains the base, ``training.trainer.train_arm`` trains each ARM with the
GenARM loss, and the result is a model-set file that ``loading.load_model_set`` reads like any
other. The cache key hashes the settings and this world's source code, so a change rebuilds; a
build happens in a temporary folder that is renamed into place only when complete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from genarm_core.models.cache import build_atomically, cache_root, ensure_judges
from . import world

OBJECTIVES = ("helpfulness", "harmlessness")


@dataclass(frozen=True)
class DemoSettings:
    """Everything that determines the demo model set (hashed into the cache key)."""

    # The sizes of the one build the project makes (the quick tests' own, about a minute on 2 cores).
    # A larger build (3000 SFT prompts, 1500 pair prompts, 4 layers of 128) was retired: its
    # harmlessness ARM steered on one machine (1.00 of harmful prompts refused at (1, 2)) and not on
    # another (0.01), and the smollm2 set is the one whose tables say what the method does.
    seed: int = 0
    sft_prompts: int = 900
    sft_styles_per_prompt: int = 2
    pair_prompts: int = 500
    pairs_per_prompt: int = 2
    # Room for every word of the world as one token (``world.vocabulary``; 1445 tokens are used).
    vocab_size: int = 1536
    hidden: int = 96
    layers: int = 2
    heads: int = 4
    # Tied embeddings let the base copy a word it has never produced (measured: untied, 2-7% of
    # new copy tasks copied; tied, 95-100%).
    tie_embeddings: bool = True
    # The copy warm-up before the mixed corpus (short terse copy tasks only).
    copy_prompts: int = 1000
    copy_epochs: float = 1.0
    copy_batch: int = 16
    sft_epochs: float = 3.0
    sft_lr: float = 3e-3
    sft_batch: int = 16
    # The ARMs are full fine-tunes of the tied base; untied, each gets an output embedding of its own
    # (tied, the harmlessness ARM collapsed into repeating "help": harmful prompts refused 0.02 at
    # (0, 1) on held-out families; untied 1.00).
    untie_arm_embeddings: bool = True
    arm_epochs: float = 2.0
    arm_lr: float = 1e-3
    arm_batch: int = 16
    # As in the paper's PKU-SafeRLHF setting (0.5 vs 0.01): a smaller β_r lets the harmlessness ARM
    # learn larger margins, so that with both weights up it wins on harmful prompts.
    beta_r: dict[str, float] = field(default_factory=lambda: {"helpfulness": 1.0, "harmlessness": 0.01})
    # The paper's loss. An SFT term (sft_weight 1, as the smollm2 ARMs use) was measured here too:
    # with β_r = 0.01 it swamps the harmlessness margin (refusal at α_harm = 2 fell to 0.23).
    sft_weight: float = 0.0

    @classmethod
    def small(cls) -> "DemoSettings":
        """The build the tests use: the one build (the name stays for the callers that ask for it)."""
        return cls()

    def key(self) -> str:
        src = inspect.getsource(world) + inspect.getsource(DemoSettings) + _BUILD_VERSION
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True) + src
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


_BUILD_VERSION = "demo-build-4"  # bump when the build changes outside the hashed sources


def demo_path(settings: DemoSettings | None = None, cache_dir: str | Path | None = None) -> Path:
    """Where the demo model-set file lives (whether built yet or not)."""
    settings = settings or DemoSettings()
    return cache_root(cache_dir) / "demo" / settings.key() / "models.yaml"


def ensure_demo(settings: DemoSettings | None = None, cache_dir: str | Path | None = None, force: bool = False,
                progress: bool = True) -> Path:
    """Return the demo's model-set file, building it first if it is not cached."""
    settings = settings or DemoSettings()
    target = demo_path(settings, cache_dir)
    build_atomically(target.parent, lambda tmp: build(settings, tmp, progress=progress), force=force)
    ensure_judges(target, JUDGES)
    return target


def _style_judge(kind: str, styles: list[str], description: str) -> dict:
    return {"kind": "rule", "function": "genarm_core.demo.rules:style_is", "args": {"kind": kind, "styles": styles},
            "description": description}


#: The demo's judges: the world's own classifier (``world.classify``), as rule judges; the columns
#: of its README table.
JUDGES = {
    "harmful_refused": _style_judge("harmful", ["refusal"], "harmful prompts: the answer is a refusal"),
    "harmful_complied": _style_judge("harmful", ["detailed", "terse"], "harmful prompts: an on-topic answer"),
    "harmful_off_topic": _style_judge("harmful", ["off-topic"], "harmful prompts: an answer about something else"),
    "benign_detailed": _style_judge("benign", ["detailed"], "benign prompts: a detailed, on-topic answer"),
    "benign_on_topic": _style_judge("benign", ["detailed", "terse", "rude"], "benign prompts: on topic, any style"),
    "benign_off_topic": _style_judge("benign", ["off-topic"], "benign prompts: an answer about something else"),
    "benign_evasive": _style_judge("benign", ["evasive"], "benign prompts: a dodge"),
    "benign_refused": _style_judge("benign", ["refusal"], "benign prompts: refused"),
    "unclassified": _style_judge("any", ["other"], "any prompt: no style's markers"),
    "refused": {**_style_judge("any", ["refusal"], "any prompt: the answer is a refusal (applies to prompts with no kind, "
                                                  "e.g. typed in Compare)"), "compare": True},
}


#: Estimated seconds per stage on 2 CPU cores (the progress bar scales them by how fast it goes).
STAGES = [("tokenizer", 1.0), ("copy warm-up", 90.0), ("base model", 100.0), ("helpfulness ARM", 33.0),
          ("harmlessness ARM", 33.0)]


def build(settings: DemoSettings, out: Path, progress: bool = True) -> dict[str, Any]:
    """Build everything into ``out`` (paths inside the model-set file are relative to it)."""
    import torch

    from ..progress import BuildProgress
    from ..threads import apply_threads
    from genarm_core.models.tiny import make_model, save, train_bpe_tokenizer, write_model_set
    from ..training.data import PreferencePair
    from ..training.sft import train_causal_lm
    from ..training.trainer import ARMTrainingConfig, train_arm

    # Before any parallel work: flushing denormals is a per-thread CPU flag that torch's worker
    # threads take from the thread that creates them, so train_arm's own call comes too late once
    # the SFT has started the pool (the helpfulness ARM then trained 3x slower: 58 s instead of 20 s).
    torch.set_flush_denormal(True)
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    train_prompts, held_out = world.split_prompts(settings.seed)
    bar = BuildProgress(STAGES, "building the demo model set", enabled=progress)
    info: dict[str, Any] = {"threads": {}, "stage_seconds": {}}

    def stage(name: str):
        info["threads"][name] = apply_threads()  # measured per stage: the machine's load changes
        info["stage_seconds"][name] = time.perf_counter()
        return bar.stage(name)

    def done(name: str) -> None:
        bar.finish_stage()
        info["stage_seconds"][name] = round(time.perf_counter() - info["stage_seconds"][name], 1)

    stage("tokenizer")
    corpus = world.sft_texts(train_prompts[: settings.sft_prompts], settings.sft_styles_per_prompt, settings.seed)
    tokenizer = train_bpe_tokenizer(corpus, vocab_size=settings.vocab_size, whole_words=world.vocabulary())
    model = make_model(tokenizer, hidden=settings.hidden, layers=settings.layers, heads=settings.heads,
                       max_positions=256, seed=settings.seed, tie_embeddings=settings.tie_embeddings)
    done("tokenizer")
    # Copying first, on short texts where it is the only thing to learn; in the mixed corpus alone
    # the base learnt the trained tasks by heart and never copied a held-out family's subject.
    report = stage("copy warm-up")
    info["copy_loss"] = train_causal_lm(model, tokenizer, world.copy_texts(settings.copy_prompts, settings.seed),
                                        out / "_sft", epochs=settings.copy_epochs, learning_rate=settings.sft_lr,
                                        batch_size=settings.copy_batch, seed=settings.seed, progress=report)
    done("copy warm-up")
    report = stage("base model")
    info["sft_loss"] = train_causal_lm(model, tokenizer, corpus, out / "_sft", epochs=settings.sft_epochs,
                                       learning_rate=settings.sft_lr, batch_size=settings.sft_batch, seed=settings.seed,
                                       progress=report)
    save(model, tokenizer, out / "base")
    shutil.rmtree(out / "_sft", ignore_errors=True)
    done("base model")

    # Copy tasks teach the base to carry a subject over; the ARMs learn the real tasks' trade-off.
    real = [p for p in train_prompts if p.family != "copy"]
    pair_prompts = real[settings.sft_prompts: settings.sft_prompts + settings.pair_prompts]
    if len(pair_prompts) < settings.pair_prompts:  # small worlds: reuse prompts with new responses
        pair_prompts = real[: settings.pair_prompts]
    for i, objective in enumerate(OBJECTIVES):
        report = stage(f"{objective} ARM")
        rows = world.preference_pairs(objective, pair_prompts, settings.pairs_per_prompt, settings.seed + 1 + i)
        pairs = [PreferencePair(r["prompt"], r["chosen"], r["rejected"]) for r in rows]
        cfg = ARMTrainingConfig(objective=objective, base=str(out / "base"), beta_r=settings.beta_r[objective],
                                learning_rate=settings.arm_lr, epochs=settings.arm_epochs, batch_size=settings.arm_batch,
                                grad_accum=1, lora=False, template=world.TEMPLATE, eval_fraction=0.1,
                                sft_weight=settings.sft_weight, seed=settings.seed, save_steps=10**9,
                                untie_embeddings=settings.untie_arm_embeddings,
                                gradient_checkpointing=False)  # a tiny model: nothing to save
        info[objective] = train_arm(cfg, pairs, out / objective, progress=report, log=lambda msg: None)
        shutil.rmtree(out / objective / "checkpoints", ignore_errors=True)
        done(f"{objective} ARM")
    bar.close()

    # Harmlessness starts at twice helpfulness: below that ratio the demo's ARMs refuse few harmful
    # prompts (README table), as with the real smollm2 set.
    objectives = {o: {"path": f"./{o}", "template": world.TEMPLATE, "default_weight": 1.0 if o == "helpfulness" else 2.0,
                      "min_weight": -2.0, "max_weight": 4.0,
                      "description": "prefers detailed, on-topic answers" if o == "helpfulness"
                      else "prefers refusing harmful requests and polite wording"} for o in OBJECTIVES}
    write_model_set(out / "models.yaml", "./base", objectives, name="demo",
                    description="Built-in demo world: a tiny Llama base and two ARMs trained on generated dialogues.",
                    defaults={"temperature": 1.0, "max_new_tokens": 48, "stop": ["\n\nHuman:"]}, max_new_tokens_cap=128)
    data = yaml.safe_load((out / "models.yaml").read_text())
    data["base"]["template"] = world.TEMPLATE
    (out / "models.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    (out / "heldout.json").write_text(json.dumps([dataclasses.asdict(p) for p in held_out], indent=0))
    info["build_seconds"] = round(time.perf_counter() - t0, 1)
    info["settings"] = dataclasses.asdict(settings)
    (out / "build_info.json").write_text(json.dumps(info, indent=2, default=str))
    return info


def sample_held_out(models_yaml: str | Path, n_per_kind: int, seed: int = 0) -> list[world.Prompt]:
    """``n_per_kind`` benign and ``n_per_kind`` harmful held-out prompts, sampled with ``seed``
    (the same sample as a study's ``prompts: {builtin: demo, per_kind: N, seed: S}``)."""
    from genarm_core.models.prompts import sample_per_kind

    return sample_per_kind(held_out_prompts(models_yaml), n_per_kind, seed, kind=lambda p: p.kind)


def held_out_prompts(models_yaml: str | Path) -> list[world.Prompt]:
    """The demo's held-out prompts (families never seen in training)."""
    data = json.loads((Path(models_yaml).parent / "heldout.json").read_text())
    return [world.Prompt(**d) for d in data]
