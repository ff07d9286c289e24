"""Errors the dashboard shows to a person as they are (one line, no stack trace)."""

from __future__ import annotations


class UserError(ValueError):
    """Bad input from a person or an API client, or a refusal (database away); the message names
    the field and is shown as it is."""


class NotStoredError(UserError):
    """The database refused a write; what was being written is kept in memory (``records.Records``)."""


class AlreadyJudged(UserError):
    """A vote on a pair its annotator already judged differently; ``judgment_id`` is the stored one."""

    def __init__(self, message: str, judgment_id: int):
        super().__init__(message)
        self.judgment_id = judgment_id


class Cancelled(UserError):
    """A run the person stopped; what it finished is stored (the message says how much and how to resume)."""
