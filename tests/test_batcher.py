"""Several pages comparing at once: pairs requested together are decoded as one engine batch, each
with the tokens it gets alone; one page's Stop stops its own rows only."""

from __future__ import annotations

import threading

import pytest

from app.service import AppContext
from storage.store import Store


@pytest.fixture
def ctx(tiny_set, tmp_path):
    c = AppContext({"tiny": tiny_set}, Store(str(tmp_path / "db.sqlite")))
    yield c
    c.close()


def _pair(ctx, prompt, seed, max_new=8, cancel=None, out=None, key=None):
    settings = [ctx.setting("genarm", {"helpfulness": 1.0, "harmlessness": 0.5}), ctx.setting("base", {})]
    cfg = ctx.decoding(1.0, 1.0, 0, 1.0, max_new, seed)
    last = None
    for last in ctx.generate_pair(prompt, settings, cfg, cancel=cancel):
        pass
    if out is not None:
        out[key] = last
    return last


def test_pairs_requested_together_share_one_batch_and_keep_their_own_tokens(ctx):
    requests = [("Human: hi Assistant:", 1, 8), ("Human: bread? Assistant:", 2, 5), ("Human: a joke? Assistant:", 3, 12)]
    alone = [_pair(ctx, p, s, m) for p, s, m in requests]
    assert ctx.batcher.batches == [1, 1, 1]
    out: dict = {}
    threads = [threading.Thread(target=_pair, args=(ctx, p, s, m), kwargs={"out": out, "key": i})
               for i, (p, s, m) in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert ctx.batcher.batches[-1] == 3  # one batch for the three pages
    for i, single in enumerate(alone):
        together = out[i]
        assert [r.text for r in together.results] == [r.text for r in single.results]
        assert all(r.n_tokens <= requests[i][2] for r in together.results)  # each request's own length limit
        assert together.pair is not None and len(together.pair.ids) == 2  # stored, votable
    assert ctx.store.counts()["generations"] == 12


def test_one_pages_stop_stops_its_own_rows_only(ctx):
    stop = threading.Event()
    out: dict = {}
    ctx.batcher.gather_s = 0.5
    stopper = threading.Timer(0.9, stop.set)  # while the shared batch decodes
    stopper.start()
    threads = [threading.Thread(target=_pair, args=(ctx, "Human: hi Assistant:", 1, 300),
                                kwargs={"out": out, "key": "stopped", "cancel": stop}),
               threading.Thread(target=_pair, args=(ctx, "Human: bread? Assistant:", 2, 300),
                                kwargs={"out": out, "key": "other"})]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert ctx.batcher.batches[-1] == 2
    assert {r.finish_reason for r in out["stopped"].results} == {"cancelled"}
    assert "cancelled" not in {r.finish_reason for r in out["other"].results}
    assert max(r.n_tokens for r in out["other"].results) > max(r.n_tokens for r in out["stopped"].results) or \
        all(r.finish_reason == "eos" for r in out["other"].results)


def test_requests_that_cannot_share_a_batch_run_one_after_another(ctx):
    settings = [ctx.setting("base", {})]
    hot, cold = ctx.decoding(1.0, 1.0, 0, 1.0, 4, 0), ctx.decoding(1.0, 0.0, 0, 1.0, 4, 0)
    out: dict = {}

    def run(cfg, key):
        for last in ctx.generate_pair("Human: hi Assistant:", settings * 2, cfg):
            out[key] = last

    threads = [threading.Thread(target=run, args=(cfg, k)) for k, cfg in (("hot", hot), ("cold", cold))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert ctx.batcher.batches[-2:] == [1, 1]  # another temperature: not one batch
    assert out["hot"].pair is not None and out["cold"].pair is not None
