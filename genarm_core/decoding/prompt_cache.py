"""Prompt KV caches kept between requests: moving a slider regenerates the same prompt.

An entry is one member's view of one prompt after the prefill: per decoder layer its keys and
values, (1, heads, L, head dim) for the prompt's L tokens (no padding), or None for a layer the
member did not compute itself because a shared trunk computed it as the base (``trunk``: there its
values are the base's), and its log-probs of the first new token. Entries are keyed by (model,
member, prompt ids), so a later batch with other weights, other panels or other prompts beside
it reuses what it can: a forward group whose every (member, prompt) is held skips its prefill
(``runner.ForwardGroup.prefill``); otherwise it runs it and stores its entries.

Bounded: past ``max_bytes`` the least recently used entries go. The engine holds one cache; a new
model set gets a new engine, so nothing outlives its models. Only dynamic-cache groups use it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch

Key = tuple[int, str, tuple[int, ...]]


@dataclass
class Entry:
    layers: list[tuple[torch.Tensor, torch.Tensor] | None]
    logprobs: torch.Tensor  # (V,) the member's log-probs of the first new token
    nbytes: int


class PromptCache:
    def __init__(self, max_bytes: int = 256 * 2**20):
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Key, Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.bytes = 0
        self.hits = self.misses = 0

    @staticmethod
    def key(model: Any, member: str, ids: list[int]) -> Key:
        return (id(model), member, tuple(ids))

    def get(self, key: Key) -> Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: Key, layers: list[tuple[torch.Tensor, torch.Tensor] | None], logprobs: torch.Tensor) -> None:
        nbytes = logprobs.numel() * logprobs.element_size() + sum(
            k.numel() * k.element_size() + v.numel() * v.element_size() for kv in layers if kv is not None for k, v in [kv])
        if nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.bytes -= old.nbytes
            self._entries[key] = Entry(layers, logprobs, nbytes)
            self.bytes += nbytes
            while self.bytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self.bytes -= dropped.nbytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)
