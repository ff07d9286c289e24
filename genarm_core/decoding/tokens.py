"""Which tokens the engine may sample next: never a special token other than EOS, never a byte
that would break a UTF-8 character.

Byte-level tokenizers (GPT-2's BPE, SmolLM2's, the demo's) and SentencePiece byte fallback
(``<0xE2>``) can split one character over several tokens. A token that continues no open
character, or leaves one open at EOS, would put a replacement character (``\\ufffd``) into the
text; so each row carries its UTF-8 state (how many continuation bytes its text still awaits) and
only tokens that fit that state are allowed. ``TokenRules`` holds both rules as tensors built once
per tokenizer; applying them is one gather and a ``masked_fill`` per step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

#: A row's UTF-8 state: 0 = between characters; 1-3 = that many continuation bytes awaited; 4-7 =
#: a lead byte whose next byte has a narrower range (E0, ED, F0, F4: no overlong forms, surrogates
#: or code points past U+10FFFF, which a decoder would also turn into U+FFFD).
STATES = 8
_NARROW = {0xE0: (4, 0xA0, 0xBF), 0xED: (5, 0x80, 0x9F), 0xF0: (6, 0x90, 0xBF), 0xF4: (7, 0x80, 0x8F)}
_AFTER_NARROW = {4: (0xA0, 0xBF, 1), 5: (0x80, 0x9F, 1), 6: (0x90, 0xBF, 2), 7: (0x80, 0x8F, 2)}
_SP_BYTE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet: the printable character that stands for each byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def utf8_step(state: int, data: bytes) -> int | None:
    """The UTF-8 state after ``data`` is appended to text in ``state``, or None if it breaks a character."""
    for b in data:
        if state in _AFTER_NARROW:
            lo, hi, rest = _AFTER_NARROW[state]
            if not lo <= b <= hi:
                return None
            state = rest
        elif state:
            if b & 0xC0 != 0x80:
                return None
            state -= 1
        elif b < 0x80:
            continue
        elif 0xC2 <= b <= 0xDF:
            state = 1
        elif b in _NARROW:
            state = _NARROW[b][0]
        elif 0xE1 <= b <= 0xEF:
            state = 2
        elif 0xF1 <= b <= 0xF3:
            state = 3
        else:  # a continuation byte with nothing to continue, C0/C1 (overlong) or F5-FF
            return None
    return state


def token_bytes(tokenizer: PreTrainedTokenizerBase, vocab_size: int) -> list[bytes | None]:
    """The raw bytes of every token id below ``vocab_size``; None where they cannot be known
    (special tokens, tokenizers that are neither byte-level nor byte-fallback: those never split
    a character, so they need no state)."""
    pieces = tokenizer.convert_ids_to_tokens(list(range(vocab_size)))
    decoder = _byte_decoder()
    special = set(tokenizer.all_special_ids) | {i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    byte_level = all(p is None or i in special or all(c in decoder for c in p) for i, p in enumerate(pieces))
    byte_fallback = not byte_level and any(_SP_BYTE.match(p or "") for p in pieces)
    if not byte_level and not byte_fallback:
        return [None] * vocab_size
    out: list[bytes | None] = []
    for i, piece in enumerate(pieces):
        if piece is None or i in special:
            out.append(None)
        elif byte_level:
            out.append(bytes(decoder[c] for c in piece))
        elif (m := _SP_BYTE.match(piece)) is not None:
            out.append(bytes([int(m.group(1), 16)]))
        else:  # a SentencePiece piece is whole text; "▁" stands for a space
            out.append(piece.replace("\u2581", " ").encode("utf-8"))
    return out


def excluded_ids(tokenizer: PreTrainedTokenizerBase, vocab_size: int, eos_ids: set[int]) -> list[int]:
    """Special tokens (pad, BOS, unknown, control tokens of a chat template) other than EOS."""
    special = set(tokenizer.all_special_ids) | {i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    return sorted(i for i in special if i is not None and 0 <= i < vocab_size and i not in eos_ids)


@dataclass
class TokenRules:
    """``allowed[s, v]``: token v may follow text in UTF-8 state s; ``after[s, v]``: the new state."""

    allowed: torch.Tensor  # (STATES, V) bool
    after: torch.Tensor  # (STATES, V) int64
    excluded: list[int]  # special token ids never sampled

    @classmethod
    def for_tokenizer(cls, tokenizer: PreTrainedTokenizerBase, vocab_size: int, eos_ids: set[int]) -> "TokenRules":
        excluded = excluded_ids(tokenizer, vocab_size, eos_ids)
        allowed = torch.ones((STATES, vocab_size), dtype=torch.bool)
        after = torch.zeros((STATES, vocab_size), dtype=torch.long)
        allowed[:, excluded] = False
        for v, data in enumerate(token_bytes(tokenizer, vocab_size)):
            if data is None:
                if v in eos_ids:
                    allowed[1:, v] = False  # no ending in the middle of a character
                continue
            if data.isascii():  # most tokens: fine between characters only
                allowed[1:, v] = False
                continue
            for s in range(STATES):
                nxt = utf8_step(s, data)
                if nxt is None:
                    allowed[s, v] = False
                else:
                    after[s, v] = nxt
        return cls(allowed=allowed, after=after, excluded=excluded)

    def to(self, device: torch.device) -> "TokenRules":
        return TokenRules(self.allowed.to(device), self.after.to(device), self.excluded)

    def mask(self, states: torch.Tensor) -> torch.Tensor:
        """(B,) states -> (B, V) bool, True where a token is not allowed. A row left with nothing
        allowed (a tokenizer without continuation bytes) falls back to excluding special tokens only."""
        allowed = self.allowed[states]  # (B, V)
        stuck = ~allowed.any(-1, keepdim=True)  # no host read: a graph-safe fallback
        return ~torch.where(stuck, self.allowed[0], allowed)

    def advance(self, states: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """(B,) states and the (B,) tokens just chosen -> the (B,) new states."""
        return self.after[states, tokens]


class IncrementalText:
    """A completion's text, kept up to date one token at a time without decoding it all again.

    Decoding the whole completion every step costs O(length) per row per step (1.3 ms per step at
    batch 16 and 512 tokens with SmolLM2's tokenizer, measured on the CPU): the host then falls
    behind a graphed GPU step. This decodes a short window instead, the way vLLM does: the text of
    ``ids[prefix:]`` minus that of ``ids[prefix:read]`` is what the newest tokens add (the window
    keeps a token of context, never a special token, which a decode skips, so tokenizers that
    drop a word's leading space at the start of a decode still agree with a full decode). While a character is open
    (``utf8_open``) its bytes (U+FFFD when decoded) are left out and nothing is committed, so
    the window reaches back to the last whole character. If a window's text does not extend its
    prefix's, the whole completion is decoded once (always right, only slower).
    """

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self._special = set(tokenizer.all_special_ids)
        self.ids: list[int] = []
        self.text = ""  # the text so far, whole characters only
        self._committed = ""  # the text of ids[:read]
        self._prefix = 0  # window start
        self._read = 0  # tokens whose text is committed

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def copy(self) -> "IncrementalText":
        """An independent copy (the same tokenizer): a row that continues from another row's text."""
        other = IncrementalText.__new__(IncrementalText)
        other.__dict__.update(self.__dict__)
        other.ids = list(self.ids)
        return other

    def push(self, token_id: int, utf8_open: bool) -> str:
        """Add a token; returns the text so far."""
        self.ids.append(token_id)
        before = self._decode(self.ids[self._prefix:self._read])
        window = self._decode(self.ids[self._prefix:])
        if utf8_open:
            window = window.rstrip("\ufffd")
        if window.startswith(before):
            self.text = self._committed + window[len(before):]
        else:
            full = self._decode(self.ids)
            self.text = full.rstrip("\ufffd") if utf8_open else full
        if not utf8_open:
            self._committed = self.text
            # The next window starts at the oldest token of this step, unless that is a special token:
            # a decode skips it, and the token after it would then lose its leading space.
            if self.ids[self._read] not in self._special:
                self._prefix = self._read
            self._read = len(self.ids)
        return self.text
