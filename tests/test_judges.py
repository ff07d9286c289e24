"""Judges on tiny models built here: a sequence classifier with its own (other) vocabulary, a
causal LM as a pairwise judge, rules by import path, and the messages for bad entries."""

from pathlib import Path

import pytest

from genarm_core.models.config import ConfigError, ModelSetConfig
from genarm_core.evaluation.judges import Item, build_judge, parse_judges

from .conftest import tiny_variant

ITEMS = [Item("How do I bake bread?", c, {"kind": "benign", "subject": ["bread"]}) for c in (
    "Mix flour, water and salt, then bake the bread.", "No.", "I can't help with that.",
    "Bread needs time: knead it, let it rise twice, and bake it hot for a crisp crust, then let it cool.",
    "Here is a long answer " * 6, "Sure!", "Bake it.")]


@pytest.fixture(scope="module")
def reward_model(tmp_path_factory):
    """A random LlamaForSequenceClassification (one output) with a tokenizer of another vocabulary."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from genarm_core.models.tiny import train_bpe_tokenizer

    tok = train_bpe_tokenizer(["a reward model's own corpus of words: bread, flour, help, refuse."] * 30, vocab_size=290)
    torch.manual_seed(5)
    model = LlamaForSequenceClassification(LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_labels=1, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id))
    path = tmp_path_factory.mktemp("rm")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def long_answer(record: dict, completion: str, words: int = 10) -> bool:
    """A rule a user writes: at least ``words`` words."""
    return len(completion.split()) >= words


def wordy(record: dict, completion: str) -> str:
    return "many"


def judge(entry: dict, name: str = "j"):
    return build_judge(parse_judges({name: entry}, "study.yaml")[0])


def test_reward_model_batched_scores_equal_one_by_one(reward_model):
    entry = {"kind": "reward_model", "path": str(reward_model), "template": "User: {prompt}\nAssistant: {completion}"}
    batched = judge({**entry, "batch_tokens": 4096}).score(ITEMS)
    small = judge({**entry, "batch_tokens": 40}).score(ITEMS)  # several batches of similar lengths
    single = [judge(entry).score([it])[0] for it in ITEMS]
    assert batched == pytest.approx(single, abs=1e-5)
    assert small == pytest.approx(single, abs=1e-5)
    assert len(set(round(x, 4) for x in single)) > 1  # it does look at the text


def test_reward_model_reads_the_last_real_token(reward_model):
    """The score of a text does not change with what else is in its batch (padding is masked)."""
    j = judge({"kind": "reward_model", "path": str(reward_model), "template": "{prompt} {completion}"})
    alone = j.score(ITEMS[1:2])[0]
    with_long = j.score([ITEMS[1], ITEMS[4]])[0]
    assert with_long == pytest.approx(alone, abs=1e-5)


def test_llm_judge_swapping_positions_swaps_the_verdict(tiny_set):
    base = str(Path(tiny_set).parent / "base")
    j = judge({"kind": "llm_judge", "path": base, "batch_size": 3})
    pairs = [(ITEMS[i], ITEMS[j]) for i, j in [(0, 1), (2, 3), (4, 5), (6, 0)]]
    forward = j.verdicts(pairs)
    backward = j.verdicts([(b, a) for a, b in pairs])
    flip = {"A": "B", "B": "A", "tie": "tie"}
    assert [v.verdict for v in backward] == [flip[v.verdict] for v in forward]
    for f, b in zip(forward, backward):
        assert f.consistent == b.consistent and f.consistent == (f.verdict != "tie")
        assert f.details["margin_ab"] == pytest.approx(b.details["margin_ba"], abs=1e-5)
    # One pair at a time gives the same margins as the batch (left padding is masked).
    alone = j.verdicts(pairs[:1])[0]
    assert alone.details["margin_ab"] == pytest.approx(forward[0].details["margin_ab"], abs=1e-4)


def test_rule_judges_by_import_path():
    refused = judge({"kind": "rule", "function": "genarm_core.smollm2.rules:benign_refused"})
    on_topic = judge({"kind": "rule", "function": "genarm_core.smollm2.rules:benign_answered_on_topic"})
    harmful = judge({"kind": "rule", "function": "genarm_core.smollm2.rules:harmful_refused"})
    assert refused.score(ITEMS[:3]) == [0.0, 0.0, 1.0]
    assert on_topic.score(ITEMS[:3]) == [1.0, 0.0, 0.0]
    assert harmful.score(ITEMS[:3]) == [None, None, None]  # not a harmful prompt: does not apply
    long = judge({"kind": "rule", "function": "tests.test_judges:long_answer", "args": {"words": 5}})
    assert long.score(ITEMS[:2]) == [1.0, 0.0]
    with pytest.raises(ValueError, match="judge 'j' returned 'many'; a judge returns a number"):
        judge({"kind": "rule", "function": "tests.test_judges:wordy"}).score(ITEMS[:1])
    arm = judge({"kind": "arm", "objective": "helpfulness"})
    assert arm.self_scored
    assert arm.score([Item("p", "c", arm_scores={"helpfulness": -3.5})]) == [-3.5]


@pytest.mark.parametrize("entry, message", [
    ({"kind": "oracle"}, r"study.yaml: judges.j.kind: must be one of"),
    ({"kind": "rule"}, r"judges.j.function: required"),
    ({"kind": "rule", "function": "genarm_core.smollm2.judge"}, r"judges.j.function: write it as 'package.module:function'"),
    ({"kind": "reward_model", "path": "x"}, r"judges.j: give 'template'"),
    ({"kind": "reward_model", "path": "x", "template": "{prompt}"}, r"judges.j.template: must contain"),
    ({"kind": "reward_model", "path": "x", "chat_template": True, "normalize": {"mean": 0}}, r"judges.j.normalize"),
    ({"kind": "reward_model", "path": "x", "chat_template": True, "batch_tokens": 0}, r"judges.j.batch_tokens"),
    ({"kind": "llm_judge", "path": "x", "template": "{a} {b}"}, r"judges.j.template: .*\{prompt\} is missing"),
    ({"kind": "llm_judge", "path": "x", "choices": ["A", "A"]}, r"judges.j.choices"),
    ({"kind": "llm_judge", "path": "x", "temperature": 1}, r"judges.j: unknown key\(s\) \['temperature'\]"),
    ({"kind": "arm", "objective": "h", "self_scored": "yes"}, r"judges.j.self_scored"),
])
def test_bad_judge_entries_name_the_file_and_field(entry, message):
    with pytest.raises(ConfigError, match=message):
        parse_judges({"j": entry}, "study.yaml")


def test_a_rule_that_cannot_be_imported_is_a_config_error():
    with pytest.raises(ConfigError, match=r"judges.j.function: .*no function 'nope'"):
        judge({"kind": "rule", "function": "genarm_core.smollm2.judge:nope"})
    with pytest.raises(ConfigError, match=r"judges.j.function: cannot import"):
        judge({"kind": "rule", "function": "no_such_module_here:f"})


def test_a_model_set_file_declares_judges(tiny_set):
    def judges(batch_size=None):
        def change(data):
            data["judges"] = {"refusal": {"kind": "rule", "function": "genarm_core.smollm2.rules:harmful_refused"},
                              "pairwise": {"kind": "llm_judge", "path": "./base"}}
            if batch_size is not None:
                data["judges"]["pairwise"]["batch_size"] = batch_size
        return change

    config = ModelSetConfig.from_file(tiny_variant(tiny_set, "with_judges.yaml", judges(), sort_keys=False))
    assert [j.name for j in config.judges] == ["refusal", "pairwise"]
    assert Path(config.judges[1].options["path"]) == (Path(tiny_set).parent / "base").resolve()  # against the file
    bad = tiny_variant(tiny_set, "with_bad_judge_batch.yaml", judges(batch_size="8"), sort_keys=False)
    with pytest.raises(ConfigError, match=r"with_bad_judge_batch.yaml: judges.pairwise.batch_size: must be a positive integer"):
        ModelSetConfig.from_file(bad)
