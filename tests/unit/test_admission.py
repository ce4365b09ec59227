"""The allowlist and the lock-out of an acceptor session (actors.shell.admission)."""

from __future__ import annotations

import pytest

from actors.shell.admission import MAX_TRACKED, Admission, AdmissionRules, parse_network


def test_without_an_allowlist_every_address_may_try() -> None:
    assert Admission(AdmissionRules()).refusal("198.19.200.9", 0.0) is None


def test_the_allowlist_admits_its_networks_and_closes_on_everyone_else() -> None:
    admission = Admission(AdmissionRules(allow=(parse_network("198.18.0.0/15"), parse_network("127.0.0.1"))))
    assert admission.refusal("198.19.4.2", 0.0) is None
    assert admission.refusal("127.0.0.1", 0.0) is None
    assert admission.refusal("::ffff:198.18.0.7", 0.0) is None
    refusal = admission.refusal("127.0.0.2", 0.0)
    assert refusal is not None and "127.0.0.2" in refusal and "allow_from" in refusal
    assert admission.refusal("not an address", 0.0) is not None


def test_failures_within_the_window_lock_the_address_out_for_the_lockout_time() -> None:
    admission = Admission(AdmissionRules(max_failures=3, window_s=10.0, lockout_s=60.0))
    assert not admission.failed("198.18.0.5", 0.0)
    assert not admission.failed("198.18.0.5", 1.0)
    assert admission.failed("198.18.0.5", 2.0)
    refusal = admission.refusal("198.18.0.5", 3.0)
    assert refusal is not None and "locked out" in refusal
    assert admission.refusal("198.18.0.6", 3.0) is None  # another address is not affected
    assert admission.refusal("198.18.0.5", 62.0) is None


def test_failures_spread_wider_than_the_window_never_lock() -> None:
    admission = Admission(AdmissionRules(max_failures=3, window_s=10.0, lockout_s=60.0))
    assert not any(admission.failed("198.18.0.5", t * 6.0) for t in range(20))
    assert admission.refusal("198.18.0.5", 200.0) is None


def test_an_accepted_logon_forgets_the_addresses_failures() -> None:
    admission = Admission(AdmissionRules(max_failures=2, window_s=10.0, lockout_s=60.0))
    admission.failed("198.18.0.5", 0.0)
    admission.succeeded("198.18.0.5")
    assert not admission.failed("198.18.0.5", 1.0)


def test_the_number_of_remembered_addresses_is_bounded() -> None:
    admission = Admission(AdmissionRules(max_failures=2))
    for n in range(MAX_TRACKED + 50):
        admission.failed(f"198.{18 + (n >> 16 & 1)}.{n >> 8 & 255}.{n & 255}", 0.0)
    assert admission.tracked == MAX_TRACKED


def test_nonsense_rules_are_refused() -> None:
    with pytest.raises(ValueError):
        AdmissionRules(max_failures=0)
