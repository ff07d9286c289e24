"""The research record: every generation and judgment, in SQLite or PostgreSQL, and its exports.

Never imports torch. Start with ``storage.store.Store`` and ``storage.export.export``.
"""
