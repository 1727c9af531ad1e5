"""Pure grouping rules: hashing, first-known wins, linking of free elements, noise windows."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from app.issues.fingerprint import fingerprint_hashes, hash_element
from app.occurrences.grouping import decide
from app.occurrences.noise import Window, admit

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_each_element_is_hashed_alone_with_md5_of_utf8() -> None:
    assert hash_element("héllo") == hashlib.md5("héllo".encode()).hexdigest()
    assert fingerprint_hashes(["a", "b"]) == [hash_element("a"), hash_element("b")]


def test_repeated_elements_hash_once_in_order() -> None:
    assert fingerprint_hashes(["b", "a", "b"]) == [hash_element("b"), hash_element("a")]


def test_a_one_element_fingerprint_has_its_one_hash() -> None:
    # The one-element shortcut gives what the general path gives (and a fresh list each time).
    first = fingerprint_hashes(["a"])
    assert first == [hash_element("a")] == fingerprint_hashes(("a",))
    assert fingerprint_hashes(["a"]) is not first


def test_no_known_hash_opens_issue_keyed_by_first_element() -> None:
    decision = decide(["h1", "h2", "h3"], {})
    assert decision.group_id is None
    assert decision.primary_hash == "h1"
    assert decision.link_hashes == ("h2", "h3")


def test_first_known_hash_in_order_wins() -> None:
    decision = decide(["h1", "h2", "h3"], {"h3": 7, "h2": 9})
    assert decision.group_id == 9
    assert decision.primary_hash == "h2"


def test_new_issue_links_only_elements_no_other_issue_has() -> None:
    # h1 unknown but h2 known: the occurrence joins h2's issue; a new one never steals h2.
    assert decide(["h1", "h2"], {"h2": 4}).group_id == 4
    assert decide(["h1", "h2", "h3"], {"h2": 4}).link_hashes == ("h1", "h3")


def test_joining_an_issue_links_the_elements_no_issue_has() -> None:
    # [a] then [a, b]: b joins a's issue, so a later [b] lands there too.
    assert decide(["a", "b"], {"a": 3}).link_hashes == ("b",)


def test_joining_leaves_an_element_of_another_issue_where_it_is() -> None:
    decision = decide(["a", "b", "c"], {"a": 3, "b": 5})
    assert (decision.group_id, decision.link_hashes) == (3, ("c",))


def test_a_known_one_element_fingerprint_links_nothing() -> None:
    assert decide(["a"], {"a": 3}).link_hashes == ()


def test_noise_window_counts_until_threshold() -> None:
    a = admit(None, T0, ignore_limit=3, expiry=timedelta(hours=1))
    assert (a.window.count, a.reached, a.restarted) == (1, False, False)
    b = admit(a.window, T0 + timedelta(minutes=10), ignore_limit=3, expiry=timedelta(hours=1))
    c = admit(b.window, T0 + timedelta(minutes=20), ignore_limit=3, expiry=timedelta(hours=1))
    assert (b.window.count, b.reached) == (2, False)
    assert (c.window.count, c.reached) == (3, True)


def test_noise_window_is_fixed_and_restarts_at_its_end() -> None:
    window = Window(2, T0, T0 + timedelta(hours=1))
    at_end = admit(window, T0 + timedelta(hours=1), ignore_limit=3, expiry=timedelta(hours=1))
    assert at_end.restarted and at_end.window.count == 1
    assert at_end.window.started_at == T0 + timedelta(hours=1)


def test_noise_window_counts_occurrence_older_than_its_start() -> None:
    window = Window(1, T0, T0 + timedelta(hours=1))
    early = admit(window, T0 - timedelta(days=3), ignore_limit=2, expiry=timedelta(hours=1))
    assert early.reached and not early.restarted
    assert early.window.started_at == T0


def test_noise_window_end_is_held_at_the_largest_aware_datetime() -> None:
    late = datetime.max.replace(tzinfo=UTC) - timedelta(hours=1)
    admission = admit(None, late, ignore_limit=3, expiry=timedelta(days=2))
    assert admission.window.ends_at == datetime.max.replace(tzinfo=UTC)
    assert admission.window.ends_at.tzinfo is UTC


def test_counting_into_an_open_window_is_no_restart() -> None:
    window = Window(1, T0, T0 + timedelta(hours=1))
    admission = admit(window, T0 + timedelta(minutes=5), ignore_limit=3, expiry=timedelta(hours=1))
    assert admission.restarted is False
    assert admission.window == Window(2, T0, T0 + timedelta(hours=1))
