"""One prompt format from ARM training to decoding: what an ARM is fed equals what it learned on."""

import json

import pytest
import yaml

from genarm_core.models.config import ConfigError, ModelSetConfig
from genarm_core.decoding.engine import GenARMEngine
from genarm_core.models.formats import HH_TEMPLATE, FormatError, PromptFormat, render_turns
from genarm_core.models.loading import load_model_set
from genarm_core.training.config import ARMTrainingConfig
from genarm_core.training.data import PreferencePair
from genarm_core.training.trainer import encode_pair, resolve_format, train_arm

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
CHAT = ({"role": "system", "content": "You are a pirate."}, {"role": "user", "content": "Greet me."},
        {"role": "assistant", "content": "Ahoy!"}, {"role": "user", "content": "How do I bake bread?"})


@pytest.fixture(scope="module")
def chat_base(tmp_path_factory, tiny_tokenizer):
    """A tiny base whose tokenizer has a ChatML chat template."""
    from transformers import AutoTokenizer

    from genarm_core.models.tiny import make_model, save

    root = tmp_path_factory.mktemp("chat_base")
    save(make_model(tiny_tokenizer, hidden=32, layers=2, seed=3), tiny_tokenizer, root / "base")
    tok = AutoTokenizer.from_pretrained(root / "base")
    tok.chat_template = CHATML
    tok.save_pretrained(root / "base")
    return root / "base"


def test_chats_are_rendered_once_and_system_stays_system(chat_base):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(chat_base)
    chat = PromptFormat(chat_template=True).render(list(CHAT), tok)
    assert chat.startswith("<|im_start|>system\nYou are a pirate.<|im_end|>") and chat.count("Human") == 0
    assert PromptFormat(chat_template=True, system_prompt="Be brief.").render("Hi", tok).startswith(
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi")
    assert PromptFormat(chat_template=True, system_prompt="Be brief.").render(list(CHAT), tok) == chat  # its own wins
    hh = PromptFormat(HH_TEMPLATE).render(list(CHAT), tok)
    assert hh == "You are a pirate.\n\nHuman: Greet me.\n\nAssistant: Ahoy!\n\nHuman: How do I bake bread?\n\nAssistant:"
    tulu = render_turns(list(CHAT), "<|user|>\n{prompt}\n<|assistant|>\n")
    assert tulu == "You are a pirate.\n<|user|>\nGreet me.\n<|assistant|>\nAhoy!\n<|user|>\nHow do I bake bread?\n<|assistant|>\n"
    assert PromptFormat("Q: {prompt} A:").render("2+2?", tok) == "Q: 2+2? A:"
    with pytest.raises(FormatError, match="twice"):
        PromptFormat(HH_TEMPLATE, chat_template=True)
    with pytest.raises(FormatError, match="end with a user"):
        render_turns([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], HH_TEMPLATE)
    with pytest.raises(ConfigError, match="twice"):
        ModelSetConfig.from_dict({"base": {"path": "x", "template": "{prompt}", "chat_template": True}})


def test_responses_begin_as_the_format_expects(chat_base):
    assert PromptFormat(HH_TEMPLATE).normalise_response("Sure.") == " Sure."
    assert PromptFormat(chat_template=True).normalise_response(" Sure.") == "Sure."
    assert PromptFormat("<|assistant|>\n{prompt}").normalise_response(" Sure.") == "Sure."
    assert PromptFormat().normalise_response(" Sure.") == " Sure."  # a plain prompt: as given
    assert resolve_format(ARMTrainingConfig("o", "b"), [PreferencePair(CHAT, "a", "b")]).template == HH_TEMPLATE
    assert resolve_format(ARMTrainingConfig("o", "b"), [PreferencePair("text", "a", "b")]).template is None


PAIRS = [PreferencePair(CHAT, " Bread needs flour, water and yeast.", " No."),
         PreferencePair("How do I cook rice?", " Rinse it, then simmer it covered.", " Dunno."),
         PreferencePair(CHAT[1:2], " Hello there!", " Go away.")] * 4


@pytest.mark.parametrize("fmt", [{"template": "Q: {prompt}\nA:"}, {"chat_template": True, "system_prompt": "Be kind."}])
def test_an_arm_is_fed_at_decoding_exactly_what_it_trained_on(chat_base, tmp_path, fmt):
    from transformers import AutoTokenizer

    cfg = ARMTrainingConfig(objective="kindness", base=str(chat_base), epochs=1, batch_size=4, grad_accum=1,
                            save_steps=10**6, eval_fraction=0.25, **fmt)
    train_arm(cfg, PAIRS, tmp_path / "arm", progress=False, log=lambda m: None)
    recorded = json.loads((tmp_path / "arm" / "training_config.json").read_text())
    assert {k: recorded[k] for k in fmt} == fmt
    assert recorded["model"] == "arm" and ARMTrainingConfig.from_dict(recorded) == cfg  # read back as written
    entry = yaml.safe_load((tmp_path / "arm" / "model_set_entry.yaml").read_text())["objectives"]["kindness"]
    assert {k: entry[k] for k in fmt} == fmt and entry["adapter"] == str(tmp_path / "arm")
    # Paste the entry as the README says, beside a chat base.
    set_file = tmp_path / "set.yaml"
    set_file.write_text(yaml.safe_dump({"base": {"path": str(chat_base), "chat_template": True},
                                        "objectives": {"kindness": entry}}))
    engine = GenARMEngine(load_model_set(set_file))
    tok = AutoTokenizer.from_pretrained(chat_base)
    for pair in PAIRS[:3]:
        trained = encode_pair(pair, tok, cfg)["prompt_ids"]
        assert engine.prompt_ids(pair.prompt)["kindness"] == trained
    fed = tok.decode(engine.prompt_ids(CHAT)["kindness"])
    assert fed.count("How do I bake bread?") == 1 and "Human:" not in fed and "You are a pirate." in fed
    # Under a chat template a reply starts without HH's space; after "A:" with one.
    first = encode_pair(PAIRS[0], tok, cfg)["chosen_ids"]
    assert tok.decode(first).startswith(" Bread" if "template" in fmt else "Bread")


def test_hh_data_records_the_hh_template(chat_base, tmp_path):
    """An ARM trained on HH transcripts with no format given records HH's format, so a bare prompt
    at decoding is wrapped as in training (it was fed the bare prompt before)."""
    hh = tmp_path / "hh.jsonl"
    with hh.open("w") as fh:
        for _ in range(6):
            fh.write(json.dumps({"chosen": "\n\nHuman: hi\n\nAssistant: hello friend",
                                 "rejected": "\n\nHuman: hi\n\nAssistant: go away"}) + "\n")
    from genarm_core.training.data import load_pairs

    pairs, _ = load_pairs(hh, "hh")
    cfg = ARMTrainingConfig(objective="h", base=str(chat_base), epochs=1, batch_size=2, grad_accum=1, save_steps=10**6)
    train_arm(cfg, pairs, tmp_path / "arm", progress=False, log=lambda m: None)
    entry = yaml.safe_load((tmp_path / "arm" / "model_set_entry.yaml").read_text())["objectives"]["h"]
    assert entry["template"] == HH_TEMPLATE
    set_file = tmp_path / "set.yaml"
    set_file.write_text(yaml.safe_dump({"base": {"path": str(chat_base)}, "objectives": {"h": entry}}))
    models = load_model_set(set_file)
    assert models.arms["h"].prompt_text("hi") == "\n\nHuman: hi\n\nAssistant:"
    # Beside a chat base, whose replies start without a space, such an ARM is loaded with a warning.
    set_file.write_text(yaml.safe_dump({"base": {"path": str(chat_base), "chat_template": True}, "objectives": {"h": entry}}))
    warnings = load_model_set(set_file).warnings
    assert len(warnings) == 1 and "'h'" in warnings[0] and "--chat-template" in warnings[0]
