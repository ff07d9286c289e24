"""ARM training: the loss through the Trainer, learning a rule, LoRA and full ARMs steering decoding."""

import json
import random
import subprocess
import sys

import pytest
import torch

from genarm_core.models.config import DecodingConfig, RowSpec
from genarm_core.decoding.engine import GenARMEngine
from genarm_core.models.loading import load_model_set
from genarm_core.models.tiny import write_model_set
from genarm_core.training.data import PreferencePair
from genarm_core.training.trainer import ARMTrainer, ARMTrainingConfig, collate_pairs, encode_pair, train_arm

GOOD = "apple river sun bread garden light music friend".split()
BAD = "knife poison fire broken angry dark cold ruin".split()


def rule_pairs(n, seed):
    """Chosen responses use GOOD words, rejected ones BAD words: a rule a tiny model can learn."""
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        prompt = f"Human: tell me about {rng.choice(GOOD + BAD)} number {i} Assistant:"
        c = " " + " ".join(rng.choice(GOOD) for _ in range(rng.randint(2, 6)))
        r = " " + " ".join(rng.choice(BAD) for _ in range(rng.randint(2, 6)))
        pairs.append(PreferencePair(prompt, c, r))
    return pairs


@pytest.fixture(scope="module")
def rule_base(tmp_path_factory):
    """A tiny base whose tokenizer knows the rule's words."""
    from genarm_core.models.tiny import make_model, save, train_bpe_tokenizer

    from genarm_core.training.sft import train_causal_lm

    pairs = rule_pairs(200, 0)
    texts = [p.prompt + r for p in pairs for r in (p.chosen, p.rejected)]
    tok = train_bpe_tokenizer(texts, vocab_size=300)
    model = make_model(tok, hidden=32, layers=2)
    root = tmp_path_factory.mktemp("rule")
    train_causal_lm(model, tok, texts, root / "sft", epochs=2, progress=False)  # an SFT base, as in real use
    return save(model, tok, root / "base")


def test_encode_pair_budgets_keep_the_ends(rule_base):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(rule_base)
    cfg = ARMTrainingConfig(objective="x", base=str(rule_base), max_prompt_tokens=4, max_response_tokens=3)
    enc = encode_pair(PreferencePair("one two three four five six seven", " apple river sun bread", " knife"), tok, cfg)
    assert enc["prompt_ids"] == tok("one two three four five six seven")["input_ids"][-4:]
    assert enc["chosen_ids"][-1] == tok.eos_token_id and len(enc["chosen_ids"]) == 3
    assert enc["rejected_ids"] == tok(" knife", add_special_tokens=False)["input_ids"][-2:] + [tok.eos_token_id]


def test_one_step_changes_parameters_and_lowers_the_loss(rule_base, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments

    tok = AutoTokenizer.from_pretrained(rule_base)
    model = AutoModelForCausalLM.from_pretrained(rule_base)
    cfg = ARMTrainingConfig(objective="x", base=str(rule_base))
    batch = collate_pairs([encode_pair(p, tok, cfg) for p in rule_pairs(8, 1)], tok.pad_token_id)
    trainer = ARMTrainer(model=model, args=TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[]),
                         beta_r=0.5)
    before_params = [p.detach().clone() for p in model.parameters()]
    loss0 = trainer.compute_loss(model, batch)
    loss0.backward()
    torch.optim.SGD(model.parameters(), lr=0.05).step()
    loss1 = trainer.compute_loss(model, batch)
    assert loss1.item() < loss0.item()
    assert any(not torch.equal(a, b) for a, b in zip(before_params, model.parameters()))


def test_full_arm_learns_a_rule_and_steers_decoding(rule_base, tmp_path):
    cfg = ARMTrainingConfig(objective="goodness", base=str(rule_base), lora=False, beta_r=0.5, learning_rate=3e-3,
                            epochs=3, batch_size=8, grad_accum=1, save_steps=10_000, logging_steps=15)
    metrics = train_arm(cfg, rule_pairs(240, 2), tmp_path / "arm", eval_pairs=rule_pairs(60, 3), progress=False)
    assert metrics["after"]["pairwise_accuracy"] >= 0.9
    assert metrics["after"]["pairwise_accuracy"] > metrics["before"]["pairwise_accuracy"] + 0.2
    saved = json.loads((tmp_path / "arm" / "metrics.json").read_text())
    assert saved["after"] == metrics["after"]
    # The training log (plotted in the dashboard) carries the loss and the batches' reward accuracy.
    logged = [r for r in json.loads((tmp_path / "arm" / "log_history.json").read_text()) if "loss" in r]
    assert len(logged) == metrics["steps"] // 15 and all(0 <= r["reward_accuracy"] <= 1 for r in logged)
    assert logged[-1]["reward_accuracy"] > logged[0]["reward_accuracy"] and logged[-1]["loss"] < logged[0]["loss"]
    ms = load_model_set(write_model_set(tmp_path / "m.yaml", rule_base, {"goodness": tmp_path / "arm"}))
    assert_steers(ms, "goodness")


def assert_steers(ms, objective, check_words=True):
    """Raising the ARM's weight raises its reward of the samples and brings GOOD words (their
    first three letters: a tiny base spells them only roughly)."""
    eng = GenARMEngine(ms)
    prompt = "Human: tell me about sun number 7 Assistant:"

    def stats(weight):
        reward, good = 0.0, 0
        for seed in range(6):
            cfg = DecodingConfig(max_new_tokens=8, seed=seed, stop_at_eos=False, trace=True)
            r = eng.generate([RowSpec(prompt, {objective: weight})], cfg)[0]
            reward += r.scores[objective] / 6
            good += sum(r.text.count(w[:3]) for w in GOOD)
        return reward, good

    up, zero, down = stats(3.0), stats(0.0), stats(-3.0)
    assert up[0] > zero[0] > down[0]
    if check_words:
        assert up[1] > down[1]


def test_lora_arm_via_cli_loads_as_adapter_and_steers(rule_base, tmp_path):
    data = tmp_path / "pairs.jsonl"
    with data.open("w") as fh:
        for p in rule_pairs(160, 4):
            fh.write(json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}) + "\n")
        fh.write("{not json\n")
        fh.write(json.dumps({"prompt": "x", "chosen": "same", "rejected": "same"}) + "\n")
    out = tmp_path / "lora_arm"
    cmd = [sys.executable, "-m", "genarm_core", "train-arm", "--base", str(rule_base), "--data", str(data),
           "--format", "trl", "--objective", "goodness", "--out", str(out), "--lora", "--lr", "1e-2", "--epochs", "4",
           "--batch-size", "8", "--grad-accum", "1", "--beta-r", "0.5", "--save-steps", "20"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "1 invalid JSON" in run.stdout and "1 identical responses" in run.stdout
    assert (out / "adapter_config.json").exists() and (out / "metrics.json").exists()
    assert any((out / "checkpoints").glob("checkpoint-*"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["kind"] == "lora" and metrics["after"]["pairwise_accuracy"] > metrics["before"]["pairwise_accuracy"]
    # The adapter's own config names the base, so the model-set entry needs only the adapter.
    ms = load_model_set(write_model_set(tmp_path / "m.yaml", rule_base, {"goodness": {"adapter": str(out)}}))
    assert_steers(ms, "goodness", check_words=False)  # a rank-8 adapter on a tiny base moves rewards, not spelling
    # Resuming from the last checkpoint finishes at once and keeps the step count.
    again = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((out / "metrics.json").read_text())["steps"] == metrics["steps"]


def test_cli_errors_are_one_line(tmp_path, rule_base):
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"prompt": "x"}\n')
    run = subprocess.run([sys.executable, "-m", "genarm_core", "train-arm", "--base", str(rule_base), "--data", str(empty),
                          "--format", "trl", "--objective", "h", "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert run.returncode == 2 and "no usable preference pairs" in run.stderr and "Traceback" not in run.stderr


def test_untied_arm_from_a_tied_base(rule_base, tmp_path):
    """A full ARM of a tied base can get an output embedding of its own: same predictions at the
    start, then trained apart from the input embedding; it saves and loads untied and steers."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from genarm_core.models.tiny import make_model, save
    from genarm_core.training.sft import train_causal_lm
    from genarm_core.training.trainer import untie_embeddings

    tok = AutoTokenizer.from_pretrained(rule_base)
    tied = make_model(tok, hidden=32, layers=2, tie_embeddings=True)
    texts = [p.prompt + r for p in rule_pairs(200, 0) for r in (p.chosen, p.rejected)]
    train_causal_lm(tied, tok, texts, tmp_path / "sft", epochs=2, progress=False)
    base = save(tied, tok, tmp_path / "tied")
    assert tied.lm_head.weight is tied.model.embed_tokens.weight
    x = torch.tensor([[3, 4, 5, 6]])
    before = tied(x).logits
    assert untie_embeddings(tied) and not untie_embeddings(tied)  # a second call finds nothing tied
    assert torch.equal(tied(x).logits, before) and tied.lm_head.weight is not tied.model.embed_tokens.weight

    cfg = ARMTrainingConfig(objective="goodness", base=str(base), lora=False, beta_r=0.5, learning_rate=3e-3,
                            epochs=2, batch_size=8, grad_accum=1, save_steps=10_000, untie_embeddings=True)
    train_arm(cfg, rule_pairs(160, 2), tmp_path / "arm", eval_pairs=rule_pairs(40, 3), progress=False)
    arm = AutoModelForCausalLM.from_pretrained(tmp_path / "arm")
    assert arm.config.tie_word_embeddings is False
    assert not torch.equal(arm.lm_head.weight, arm.model.embed_tokens.weight)
    ms = load_model_set(write_model_set(tmp_path / "m.yaml", base, {"goodness": tmp_path / "arm"}))
    assert_steers(ms, "goodness", check_words=False)


def test_train_rm_lora_via_cli_learns_the_rule_and_guides_args(rule_base, tmp_path):
    """``genarm train-rm``: the same data file and flags as train-arm; a LoRA reward model with a trained
    score head, held-out accuracy before/after, an entry for ``reward_models:`` that loads and steers ARGS."""
    import yaml

    data = tmp_path / "pairs.jsonl"
    with data.open("w") as fh:
        for p in rule_pairs(200, 5):
            fh.write(json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}) + "\n")
    out = tmp_path / "rm"
    cmd = [sys.executable, "-m", "genarm_core", "train-rm", "--base", str(rule_base), "--data", str(data),
           "--format", "trl", "--objective", "goodness", "--out", str(out), "--lr", "1e-2", "--epochs", "3",
           "--batch-size", "8", "--grad-accum", "1", "--save-steps", "1000"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "goodness reward model" in run.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "reward_model" and metrics["kind"] == "lora"
    assert metrics["after"]["pairwise_accuracy"] >= 0.9 > metrics["before"]["pairwise_accuracy"]
    entry = yaml.safe_load((out / "model_set_entry.yaml").read_text())
    assert list(entry) == ["reward_models"] and entry["reward_models"]["goodness"]["adapter"] == str(out)
    # ARM-only options are not offered
    bad = subprocess.run(cmd[:-2] + ["--beta-r", "0.1"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--beta-r" in bad.stderr
    # the entry goes into a model set as it is; ARGS guided by it writes more GOOD words than the base
    set_file = write_model_set(tmp_path / "m.yaml", rule_base, {"goodness": str(rule_base)}, **entry)
    models = load_model_set(set_file)
    from genarm_core.models.reward_models import reward_of

    tok = models.tokenizer
    seqs = [tok(p.prompt + c, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for p in rule_pairs(20, 9)
            for c in (p.chosen, p.rejected)]
    r = reward_of(models.reward_models["goodness"].model, tok, seqs)
    assert sum(r[i] > r[i + 1] for i in range(0, len(r), 2)) >= 18  # the loaded entry scores as trained
    # ARGS guided by it ends with completions its reward model rates above the base's own (greedy, k = 5)
    engine = GenARMEngine(models)
    prompts = [p.prompt for p in rule_pairs(8, 11)]
    cfg = DecodingConfig(temperature=0, max_new_tokens=6, stop_at_eos=False)

    def mean_reward(method, weights, n=1):
        done = engine.generate([RowSpec(p, weights, method, n=n) for p in prompts], cfg)
        seqs = [tok(p, add_special_tokens=False)["input_ids"] + d.token_ids for p, d in zip(prompts, done)]
        return sum(reward_of(models.reward_models["goodness"].model, tok, seqs)) / len(seqs)

    assert mean_reward("args", {"goodness": 5.0}, 5) > mean_reward("base", {}) + 0.5
