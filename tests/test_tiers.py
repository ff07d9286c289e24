"""The test tiers: which values of ``$GENARM_SLOW_TESTS`` run the slow tests (tests/conftest.py)."""

import pytest

from . import conftest
from .conftest import SLOW_ENV, slow_tests_enabled


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "Yes", "on", " on "])
def test_only_a_yes_turns_the_slow_tier_on(value):
    assert slow_tests_enabled(value)


@pytest.mark.parametrize("value", [None, "", "0", "false", "False", "no", "NO", "off", " off", "nope", "2"])
def test_a_no_or_anything_else_leaves_it_off(value):
    assert not slow_tests_enabled(value)


class _Item:
    """What ``pytest_collection_modifyitems`` reads and writes of a collected test."""

    def __init__(self, slow: bool):
        self.keywords = {"slow": True} if slow else {}
        self.markers = []

    def add_marker(self, marker):
        self.markers.append(marker)


@pytest.mark.parametrize("value, skipped", [(None, True), ("false", True), ("no", True), ("off", True), ("0", True),
                                            ("1", False), ("true", False), ("yes", False), ("on", False)])
def test_the_collection_skips_slow_tests_unless_the_tier_is_on(monkeypatch, value, skipped):
    if value is None:
        monkeypatch.delenv(SLOW_ENV, raising=False)
    else:
        monkeypatch.setenv(SLOW_ENV, value)
    slow, quick = _Item(slow=True), _Item(slow=False)
    conftest.pytest_collection_modifyitems(None, [slow, quick])
    assert [m.name for m in slow.markers] == (["skip"] if skipped else [])
    assert quick.markers == []  # a quick test always runs
