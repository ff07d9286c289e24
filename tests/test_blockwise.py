"""Blockwise Best-of-N by the reward models, added as one method file: its limits (B = the length is
Best-of-N by RM with the same samples; N = 1 is the base's own sample), every block's choice checked
against the reward model read from scratch, and the reordered KV caches checked against a
teacher-forced pass of the base."""

from __future__ import annotations

import pytest
import torch

from genarm_core.decoding.engine import GenARMEngine
from genarm_core.models.config import DecodingConfig, RowSpec, Setting
from genarm_core.models.reward_models import reward_of

PROMPTS = ["Human: How do I bake bread? Assistant:", "Human: hi Assistant:"]
W = {"harmlessness": 1.0}


def rows(method, n, block=None, prompts=PROMPTS, weights=W):
    return [RowSpec(p, weights, method=method, n=n, options={} if block is None else {"block": block}) for p in prompts]


@pytest.fixture(scope="module")
def engine(rm_models):
    return GenARMEngine(rm_models)


@pytest.mark.parametrize("block", [8, 64])
def test_a_block_as_long_as_the_completion_is_best_of_n_by_the_reward_model(engine, block):
    cfg = DecodingConfig(temperature=1.0, max_new_tokens=8, seed=3)
    blockwise = engine.generate(rows("blockwise", 4, block), cfg)
    bon = engine.generate(rows("bon_rm", 4), cfg)
    assert [r.token_ids for r in blockwise] == [r.token_ids for r in bon]
    assert [c["token_ids"] for r in blockwise for c in r.candidates] == [c["token_ids"] for r in bon for c in r.candidates]


def test_one_candidate_is_the_bases_own_sample(engine):
    cfg = DecodingConfig(temperature=1.0, top_p=0.9, max_new_tokens=10, seed=1)
    assert ([r.token_ids for r in engine.generate(rows("blockwise", 1, 2), cfg)]
            == [r.token_ids for r in engine.generate(rows("base", 1, weights={}), cfg)])


def test_each_block_keeps_the_prefix_the_reward_model_rates_highest(engine, rm_models):
    """Blocks of 3 tokens, 4 candidates: each choice is the argmax of r(x, prefix) read from scratch
    (prompt in the reward model's format + the candidate's tokens), and the returned completion goes
    on from each chosen prefix."""
    cfg = DecodingConfig(temperature=1.0, max_new_tokens=9, seed=5, trace=True, stop_at_eos=False)
    specs = rows("blockwise", 4, 3)
    # decode once with a recorder of every row's tokens at each block end
    results = engine.generate(specs, cfg)
    blocks = engine.last_decode["blocks"]
    assert [d["step"] for d in blocks] == [3, 3, 6, 6]  # the last block's choice is among the final candidates
    rm = rm_models.reward_models["harmlessness"]
    for r, spec in zip(results, specs):
        mine = [d for d in blocks if d["spec"] == r.index]
        for d in mine:
            chosen_prefix = r.token_ids[:d["step"]]
            assert d["values"][d["chosen"]] == pytest.approx(max(d["values"]))
            assert reward_of(rm.model, rm.tokenizer, [rm.encode_prompt(spec.prompt) + chosen_prefix])[0] == \
                pytest.approx(d["values"][d["chosen"]], abs=1e-4)
        # the candidates at the end all started from the last chosen prefix of length 6
        assert all(c["token_ids"][:6] == r.token_ids[:6] for c in r.candidates)
        assert r.forwards_per_token == pytest.approx(4 * (1 + 1))


def test_reordered_caches_give_the_bases_own_log_probs(engine, rm_models):
    """After every reorder, each row's next-token distribution is the base's given the copied prefix:
    the trace's base log-probs equal a teacher-forced pass over prompt + completion (restricted to the
    tokens that may come next, as the engine restricts them)."""
    from genarm_core.decoding.math import restrict_logprobs

    cfg = DecodingConfig(temperature=1.0, max_new_tokens=12, seed=2, trace=True, stop_at_eos=False)
    results = engine.generate(rows("blockwise", 3, 4), cfg)
    assert engine.last_decode["blocks"]  # blocks were chosen, so rows were reordered
    base = rm_models.base
    for r in results:
        ids = torch.tensor([base.encode_prompt(r.prompt) + r.token_ids])
        with torch.no_grad():
            lp = torch.log_softmax(base.model(input_ids=ids).logits[0, :, :rm_models.vocab_size].float(), -1)
        start = ids.shape[1] - len(r.token_ids)
        utf8 = torch.zeros(1, dtype=torch.long)
        for i, (t, entry) in enumerate(zip(r.token_ids, r.trace)):
            forced = restrict_logprobs(lp[start - 1 + i].unsqueeze(0), engine.rules.mask(utf8))[0, t].item()
            assert entry["base_logprob"] == pytest.approx(forced, abs=1e-4), i
            utf8 = engine.rules.advance(utf8, torch.tensor([t]))


def test_other_rows_of_the_batch_are_untouched(engine):
    """A GenARM row and a base row beside blockwise rows decode exactly as they do alone."""
    cfg = DecodingConfig(temperature=1.0, max_new_tokens=10, seed=4)
    others = [RowSpec(PROMPTS[0], {"helpfulness": 1.0}), RowSpec(PROMPTS[1], {}, method="base")]
    alone = engine.generate(others, cfg)
    mixed = engine.generate([others[0], *rows("blockwise", 3, 2), others[1]], cfg)
    assert [mixed[0].token_ids, mixed[3].token_ids] == [r.token_ids for r in alone]


def test_the_method_answers_for_itself(rm_set, tiny_set):
    from genarm_core.models.config import ConfigError, ModelSetConfig

    s = Setting("blockwise", (("harmlessness", 1.0),), 4, (("block", 16),))
    assert s.label == "Blockwise Best-of-4 (B=16) by RM harmlessness=1" and s.batch_rows == 4
    assert Setting.from_dict(s.to_dict()) == s and s.to_dict()["options"] == {"block": 16}
    assert Setting("blockwise", (("harmlessness", 1.0),), 4).options == (("block", 8),)  # the default block
    with pytest.raises(ConfigError, match="block must be a whole number between 1 and 512"):
        Setting("blockwise", (("harmlessness", 1.0),), 4, (("block", 0),))
    with pytest.raises(ConfigError, match="has no option"):
        Setting("genarm", (("harmlessness", 1.0),), 1, (("block", 4),))
    plain = ModelSetConfig.from_file(tiny_set)
    assert "needs a trajectory reward model" in plain.method_problem("blockwise", {"harmlessness": 1})
    assert ModelSetConfig.from_file(rm_set).method_problem("blockwise", {"harmlessness": 1}) is None


def test_blockwise_beside_lora_arms_on_the_shared_trunk(tmp_path, tiny_tokenizer):
    """With LoRA ARMs steering another row, the base runs in the trunk's forward group: its reordered
    streams still give the base's own log-probs, and the GenARM row decodes as it does alone."""
    import yaml

    from genarm_core.decoding.runner import TrunkForwardGroup
    from genarm_core.models.loading import load_model_set
    from genarm_core.models.tiny import save

    from .conftest import make_rm, write_layered_set

    f = write_layered_set(tmp_path, tiny_tokenizer, "llama")
    save(make_rm(tiny_tokenizer, 21), tiny_tokenizer, tmp_path / "rm")
    data = yaml.safe_load(f.read_text())
    data["reward_models"] = {"harmlessness": {"path": str(tmp_path / "rm")}}
    f.write_text(yaml.safe_dump(data))
    models = load_model_set(f)
    engine = GenARMEngine(models)
    cfg = DecodingConfig(temperature=1.0, max_new_tokens=9, seed=6, trace=True, stop_at_eos=False)
    steer = RowSpec(PROMPTS[0], {"helpfulness": 1.0, "harmlessness": 0.5})
    seen = []
    original = TrunkForwardGroup.reorder

    def spy(self, source):
        seen.append(list(source))
        return original(self, source)

    TrunkForwardGroup.reorder = spy
    try:
        mixed = engine.generate([steer, *rows("blockwise", 3, 3, prompts=[PROMPTS[0]])], cfg)
    finally:
        TrunkForwardGroup.reorder = original
    assert seen and any(s != list(range(len(s))) for s in seen)  # the trunk's streams were reordered
    assert mixed[0].token_ids == engine.generate([steer], cfg)[0].token_ids
    from genarm_core.decoding.math import restrict_logprobs

    r = mixed[1]
    ids = torch.tensor([models.base.encode_prompt(r.prompt) + r.token_ids])
    with torch.no_grad(), models.base.model.disable_adapter():  # the base is the PeftModel the ARMs share
        lp = torch.log_softmax(models.base.model(input_ids=ids).logits[0, :, :models.vocab_size].float(), -1)
    start, utf8 = ids.shape[1] - len(r.token_ids), torch.zeros(1, dtype=torch.long)
    for i, (t, entry) in enumerate(zip(r.token_ids, r.trace)):
        forced = restrict_logprobs(lp[start - 1 + i].unsqueeze(0), engine.rules.mask(utf8))[0, t].item()
        assert entry["base_logprob"] == pytest.approx(forced, abs=1e-4), i
        utf8 = engine.rules.advance(utf8, torch.tensor([t]))
