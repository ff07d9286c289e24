"""Several people comparing at once: their pairs decoded as one engine batch.

Each Compare request hands its rows to the ``PairBatcher`` and reads its own stream back. The
batcher decodes on the server's compute thread: it takes every request waiting when it is free
(after a short gathering window, so that requests a moment apart meet), puts the rows of those that
can share a batch (the same temperature, top-k, top-p, β and stop strings; each row keeps its own
seed and length limit) into one ``GenARMEngine.stream``, and sends each request the texts of its own
rows at every step, and its own results at the end. Requests that arrive while a batch decodes wait
for the next one (they do not join it mid-decode). A request that is stopped stops its own rows
only; the others decode on.

One batch of n pairs costs less than n pairs one after another: a forward of a few more rows
costs little more than one (measured on this project's 2-core machine: three pages at once waited
1.3x a lone pair and got 2.4x its pairs; ``benchmarks.team_load``), and on a GPU nearly nothing.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from genarm_core.models.config import DecodingConfig, RowSpec

#: How long the batcher waits, once a request arrived and it is free, for others to join the batch.
GATHER_S = 0.35


@dataclass
class _Request:
    rows: list[RowSpec]
    cfg: DecodingConfig
    cancel: threading.Event | None
    out: "queue.Queue[tuple[str, Any]]" = field(default_factory=queue.Queue)
    first: int = 0  # index of its first row in the batch it joins

    def key(self) -> tuple:
        """What rows of one batch must share (the rest is per row: seed, length)."""
        c = self.cfg
        return (c.beta, c.temperature, c.top_k, c.top_p, c.stop, c.stop_at_eos, c.trace, c.score_all)


class PairBatcher:
    """Decodes the rows of concurrent requests as one batch. ``run(fn)`` runs ``fn`` on the server's
    compute thread (``ComputeThread.call``); ``engine()`` is the current engine."""

    def __init__(self, engine: Callable[[], Any], run: Callable[[Callable[[], Any]], Any], gather_s: float = GATHER_S):
        self.engine, self.run, self.gather_s = engine, run, gather_s
        self._waiting: list[_Request] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self.batches: list[int] = []  # requests per batch, most recent last (for tests and benchmarks)
        self._thread = threading.Thread(target=self._loop, name="pair-batcher", daemon=True)
        self._thread.start()

    def stream(self, rows: Sequence[RowSpec], cfg: DecodingConfig, cancel: threading.Event | None = None) -> Iterator[Any]:
        """This request's events: ``("texts", [text per row])`` while decoding, then ``("results", [RowResult])``.

        Raises:
            whatever the engine raised for this request's batch (a bad row is refused before decoding).
        """
        req = _Request([dataclasses.replace(r, seed=cfg.seed if r.seed is None else r.seed,
                                            max_new_tokens=r.max_new_tokens or cfg.max_new_tokens) for r in rows],
                       cfg, cancel)
        with self._lock:
            self._waiting.append(req)
        self._wake.set()
        while True:
            kind, value = req.out.get()
            if kind == "error":
                raise value
            yield kind, value
            if kind == "results":
                return

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(self.gather_s)  # let requests a moment apart meet in one batch
            with self._lock:
                waiting, self._waiting = self._waiting, []
                self._wake.clear()
            groups: dict[tuple, list[_Request]] = {}
            for req in waiting:
                groups.setdefault(req.key(), []).append(req)
            for reqs in groups.values():
                self._decode(reqs)

    def _decode(self, reqs: list[_Request]) -> None:
        rows: list[RowSpec] = []
        for req in reqs:
            req.first = len(rows)
            rows += req.rows
        owner = [i for i, req in enumerate(reqs) for _ in req.rows]
        cfg = dataclasses.replace(reqs[0].cfg, max_new_tokens=max(r.cfg.max_new_tokens for r in reqs))

        def stopped():  # the rows of the requests whose pages pressed Stop
            gone = {b for b, i in enumerate(owner) if reqs[i].cancel is not None and reqs[i].cancel.is_set()}
            return True if len(gone) == len(rows) else gone

        def decode() -> None:
            self.batches.append(len(reqs))
            for event in self.engine().stream(rows, cfg, stopped):
                if event.finished:
                    for req in reqs:
                        req.out.put(("results", event.results[req.first:req.first + len(req.rows)]))
                    return
                for req in reqs:
                    req.out.put(("texts", event.texts[req.first:req.first + len(req.rows)]))

        try:
            self.run(decode)
        except Exception as exc:  # noqa: BLE001 - each request of the batch gets the error to raise as its own
            if len(reqs) > 1:  # one bad request must not fail the others: decode them one at a time
                for req in reqs:
                    self._decode([req])
                return
            reqs[0].out.put(("error", exc))
