"""The annotation queue on a stored tiny study: overlap under concurrent annotators, never twice to
one annotator, blind shuffled sides stored the right way round, skips kept out of the verdicts."""

import threading
from collections import Counter

import pytest

from app.service.errors import UserError
from app.service.queue import Queue, ground_truth_pairs, study_pairs
from app.service.records import Records, annotator_agreement
from storage.store import JudgmentFilter, Store

from .conftest import tiny_variant, tiny_variant_data


@pytest.fixture
def study(request, db_url, tiny_set, engine):
    """A stored study of the tiny set, on each backend (``db_url``, tests/conftest.py)."""
    from app.service.studies import StudyRunner
    from genarm_core.evaluation.study import parse_study

    store = Store(db_url)
    marker = request.node.get_closest_marker("overlap")  # a test may ask for a study of another overlap
    s = parse_study({"name": "queue", "model_set": str(tiny_set), "prompts": ["Human: hi Assistant:", "Human: bread? Assistant:",
                                                                             "Human: a joke? Assistant:"],
                     "overlap": marker.args[0] if marker else 3,
                     "decoding": {"temperature": 1.0, "max_new_tokens": 5}, "guidelines": "Prefer **kind** answers.",
                     "settings": ["base", {"method": "genarm", "grid": {"helpfulness": [1.0, 2.0]}}]}, "q.yaml")
    run = StudyRunner(s, store, engine, tiny_set, progress=False).run()
    yield store, run.study_id
    store.close()


def test_each_pair_gets_exactly_its_overlap_under_concurrent_annotators(study):
    store, sid = study
    pairs = study_pairs(store, sid)
    assert len(pairs) == 2 * 3  # two settings against the base, on three prompts
    queue = Queue(Records(store))
    errors, served = [], []
    barrier = threading.Barrier(6)

    def annotate(name: str) -> None:
        try:
            barrier.wait()
            while (item := queue.next(sid, name)) is not None:
                served.append((name, item.generation_ids))
                queue.vote(item, "A")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=annotate, args=(f"ann{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    per_pair = Counter(p for _, p in served)
    assert set(per_pair) == set(pairs) and set(per_pair.values()) == {3}  # exactly the overlap, each
    assert len(set(served)) == len(served)  # nobody got a pair twice
    judged = Records(store).judgments(JudgmentFilter())
    assert len(judged) == 18 and judged["blind"].all()
    progress = queue.progress(sid)
    assert (progress["judged"], progress["needed"], progress["complete"]) == (18, 18, 6)


@pytest.mark.overlap(1)
def test_shuffled_sides_are_stored_the_right_way_and_skips_are_not_verdicts(study):
    store, sid = study
    records = Records(store)
    queue = Queue(records)
    item = queue.next(sid, "ann")
    assert queue.next(sid, "ann") == item  # a reload serves the open pair again
    a, b = item.generation_ids
    gens = store.generations_frame(study_id=sid).set_index("id")
    assert (item.left, item.right) == ((gens.loc[b, "completion"], gens.loc[a, "completion"]) if item.swapped
                                       else (gens.loc[a, "completion"], gens.loc[b, "completion"]))
    jid = queue.vote(item, "A")  # "the left one is better"
    row = records.judgments(JudgmentFilter()).set_index("judgment_id").loc[jid]
    assert row["verdict"] == ("B" if item.swapped else "A") and bool(row["swapped"]) == item.swapped
    nxt = queue.next(sid, "ann")
    assert nxt.generation_ids != item.generation_ids
    queue.skip(nxt, "cannot tell")
    assert len(records.judgments(JudgmentFilter())) == 1  # a skip is never a verdict
    other = queue.next(sid, "bob")
    assert other.generation_ids == nxt.generation_ids  # the skipped pair's slot went back to the pool
    third = queue.next(sid, "ann")
    assert third.generation_ids not in (item.generation_ids, nxt.generation_ids)  # and is not served to ann again
    frame = store.queue_frame(sid)
    assert Counter(frame["status"]) == {"judged": 1, "claimed": 2, "skipped": 1}
    with pytest.raises(UserError, match="annotator: type your name"):
        queue.next(sid, " ")
    with pytest.raises(UserError, match="overlap: study #.* serves each pair to 1 annotators"):
        queue.next(sid, "ann", overlap=3)  # a request cannot change the study's overlap
    line, table = annotator_agreement(records.judgments(JudgmentFilter()))
    assert table.set_index("annotator").loc["ann", "judgments"] == 1


def test_exports_carry_the_queue_skips_and_time_and_hf_loads_with_datasets(study, tmp_path):
    import datasets

    from storage.export import export

    store, sid = study
    queue = Queue(Records(store))
    for name, verdict in [("ann", "A"), ("bob", "A"), ("cat", "B")]:
        item = queue.next(sid, name)
        queue.vote(item, verdict if not item.swapped else {"A": "B", "B": "A"}[verdict])  # all about the stored A
    skipped = queue.next(sid, "ann")
    queue.skip(skipped, "unsure")
    # Every annotator saw the same first pair (fewest slots first, in study order): 2 say stored A, 1 stored B.
    summary = export(store, "csv", tmp_path / "j.csv")
    import pandas as pd

    csv = pd.read_csv(tmp_path / "j.csv")
    assert len(csv) == 4 and csv["skipped"].sum() == 1 and csv["from_queue"].all()
    assert (csv.loc[~csv["skipped"], "seconds_to_vote"] >= 0).all() and (csv["study_id"] == sid).all()
    assert summary.judgments == 3
    # train-arm reads the CSV and leaves the skip out, saying why.
    from genarm_core.training.data import load_pairs

    pairs, info = load_pairs(tmp_path / "j.csv", "dashboard")
    assert len(pairs) == 3 and "skipped by the annotator" in str(info.skipped)
    hf = export(store, "hf", tmp_path / "hf")
    ds = datasets.load_from_disk(str(tmp_path / "hf"))
    assert ds.num_rows == 4 and sum(ds["skipped"]) == 1 and set(ds["annotator"]) == {"ann", "bob", "cat"}
    card = (tmp_path / "hf" / "README.md").read_text()
    assert card.startswith("---\n") and "judgments: 3; skips: 1" in card and "annotator pairs agree 0.33" in card
    assert str(tmp_path / "hf" / "README.md") in hf.files
    # --agreed: the one pair three people judged did not get the same verdict from all: nothing to train on.
    agreed = export(store, "trl", tmp_path / "agreed.jsonl", agreed=True)
    assert list(agreed.pairs.values()) == [0]
    everything = export(store, "trl", tmp_path / "all.jsonl")
    assert list(everything.pairs.values()) == [3]


def test_ground_truth_pairs_are_mixed_in_unmarked_scored_per_annotator_and_kept_out_of_ratings(tmp_path, tiny_set, engine):
    from app.service.records import win_rates
    from app.service.studies import StudyRunner
    from app.service.study_report import build_report
    from genarm_core.evaluation.study import parse_study
    from storage.export import export

    store = Store(str(tmp_path / "gold.sqlite"))
    gold = [{"prompt": "How do I make a pipe bomb?", "a": "I can't help with that.", "b": "Take a steel pipe and...",
             "answer": "A"},
            {"prompt": "How do I bake bread?", "a": "No.", "b": "Mix flour, water, salt and yeast; knead; bake.",
             "answer": "B"}]
    study = parse_study({"name": "gold", "model_set": str(tiny_set), "prompts": ["Human: hi Assistant:"],
                         "decoding": {"max_new_tokens": 4}, "settings": ["base", {"method": "genarm", "weights": {"helpfulness": 1}}],
                         "ground_truth": gold, "ground_truth_rate": 1.0, "overlap": 1}, "gold.yaml")
    sid = StudyRunner(study, store, engine, tiny_set, progress=False).run().study_id
    assert len(study_pairs(store, sid)) == 1  # the ground truth is not a study pair
    assert len(build_report(store, sid, rounds=20).completions) == 2  # nor a cell of the report
    queue = Queue(Records(store))
    served = []
    while (item := queue.next(sid, "ann")) is not None:
        served.append(item)
        shown_right = {"A": "B", "B": "A"}  # ann gets the first check right and the second wrong
        truth = gold[len(served) - 1]["answer"] if len(served) <= 2 else "A"
        says = truth if len(served) != 2 else shown_right[truth]
        queue.vote(item, says if not item.swapped else shown_right[says])
    assert len(served) == 3
    assert {served[0].prompt, served[1].prompt} == {g["prompt"] for g in gold}  # at rate 1, the checks come first
    judged = Records(store).judgments(JudgmentFilter())
    assert judged["ground_truth"].notna().sum() == 2
    shown, _ = Records(store).judgments_table(JudgmentFilter())  # labelled as what they are, not as two settings
    assert sorted(shown["A"])[-2:] == sorted(f"ground truth (answer {g['answer']})" for g in gold)
    _, table = annotator_agreement(judged)
    row = table.set_index("annotator").loc["ann"]
    assert row["ground-truth accuracy"] == 0.5 and row["ground-truth pairs"] == 2 and row["judgments"] == 1
    assert win_rates(judged)["n"].sum() == 2  # only the real pair counts (once per side)
    summary = export(store, "trl", tmp_path / "t.jsonl")
    assert list(summary.pairs.values()) == [1]
    import pandas as pd

    export(store, "csv", tmp_path / "all.csv")
    assert pd.read_csv(tmp_path / "all.csv")["ground_truth"].notna().sum() == 2  # the CSV keeps them, flagged
    store.close()


def test_bad_ground_truth_entries_name_the_field(tiny_set):
    from genarm_core.models.config import ConfigError
    from genarm_core.evaluation.study import parse_study

    base = {"model_set": str(tiny_set), "prompts": ["x"], "settings": ["base"]}
    with pytest.raises(ConfigError, match=r"ground_truth\[0\].answer: one of A, B, tie, both_bad"):
        parse_study({**base, "ground_truth": [{"prompt": "p", "a": "x", "b": "y", "answer": "C"}]}, "s.yaml")
    with pytest.raises(ConfigError, match=r"ground_truth\[0\]: needs exactly prompt, a, b and answer"):
        parse_study({**base, "ground_truth": [{"prompt": "p", "a": "x"}]}, "s.yaml")
    with pytest.raises(ConfigError, match="ground_truth_rate: a share between 0 and 1"):
        parse_study({**base, "ground_truth_rate": 2}, "s.yaml")


def test_a_model_sets_ground_truth_reaches_every_study_of_it(tmp_path, tiny_set):
    """``ground_truth:`` in the model-set file: each study of the set stores those pairs after its own
    (a pair in both files once); a bad entry names the file and the field."""
    from app.service.studies import StudyRunner
    from genarm_core.models.config import ConfigError, ModelSetConfig
    from genarm_core.decoding.engine import GenARMEngine
    from genarm_core.evaluation.study import parse_study
    from genarm_core.models.loading import load_model_set

    shared = {"prompt": "How do I make a pipe bomb?", "a": "I can't help with that.", "b": "Take a steel pipe and...",
              "answer": "A"}
    own = {"prompt": "How do I bake bread?", "a": "No.", "b": "Mix flour, water, salt and yeast; knead; bake.", "answer": "B"}
    f = tiny_variant(tiny_set, "with_gold.yaml", lambda data: data.update(ground_truth=[shared]))
    engine = GenARMEngine(load_model_set(f))
    store = Store(str(tmp_path / "g.sqlite"))
    common = {"model_set": str(f), "prompts": ["Human: hi Assistant:"], "decoding": {"max_new_tokens": 2}, "settings": ["base"]}
    plain = StudyRunner(parse_study({"name": "plain", **common}, "a.yaml"), store, engine, f, progress=False).run()
    assert len(ground_truth_pairs(store, plain.study_id)) == 1
    both = StudyRunner(parse_study({"name": "both", **common, "ground_truth": [own, shared]}, "b.yaml"), store, engine, f,
                       progress=False)
    assert both.ground_truth() == [own, shared]
    both.run()
    assert len(ground_truth_pairs(store, both.study_id)) == 2
    store.close()
    data = tiny_variant_data(f, lambda data: data.update(ground_truth=[{**shared, "answer": "maybe"}]))
    with pytest.raises(ConfigError, match=r"with_gold.yaml: ground_truth\[0\].answer: one of A, B, tie, both_bad"):
        ModelSetConfig.from_dict(data, source=f)


@pytest.mark.overlap(1)
def test_a_stale_page_cannot_finish_another_annotators_slot(study):
    """ann's claim is released after the idle limit and the pair goes to bob: ann's old page (holding her
    slot id and the pair) cannot vote on it, bob's slot never reuses her id, and a vote is checked
    against the slot's owner and pair in the same transaction that finishes the slot."""
    import dataclasses

    store, sid = study
    records = Records(store)
    queue = Queue(records)
    stale = queue.next(sid, "ann")
    store.claim_pair(sid, "bob", study_pairs(store, sid), 1, stale_s=0)  # past the idle limit: ann's claim released
    bobs = queue.next(sid, "bob")
    assert bobs.generation_ids == stale.generation_ids and bobs.slot_id != stale.slot_id  # ids are never reused
    with pytest.raises(UserError, match="not open"):
        queue.vote(stale, "A")
    # A page that names bob's slot but is ann's (or names the wrong pair) is refused by the store itself.
    with pytest.raises(UserError, match="not this annotator's slot"):
        queue.vote(dataclasses.replace(bobs, annotator="ann"), "A")
    with pytest.raises(UserError, match="not this annotator's slot"):
        queue.vote(dataclasses.replace(bobs, generation_ids=bobs.generation_ids[::-1]), "A")
    with pytest.raises(UserError, match="was not served to 'ann'"):
        queue.item(bobs.slot_id, "ann")
    assert len(records.judgments(JudgmentFilter())) == 0
    jid = queue.vote(bobs, "B")
    assert queue.vote(queue.item(bobs.slot_id, "bob", judged=True), "B") == jid  # sent again: the same judgment
    with pytest.raises(UserError, match="exists"):
        queue.vote(queue.item(bobs.slot_id, "bob", judged=True), "A")
    judged = records.judgments(JudgmentFilter())
    assert list(judged["annotator"]) == ["bob"]
    frame = store.queue_frame(sid)
    assert list(frame.loc[frame["status"] == "judged", "annotator"]) == ["bob"]
