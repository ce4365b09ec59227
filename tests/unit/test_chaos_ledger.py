"""The chaos run's ledger (``bench/chaos/ledger.py``) on hand-made logs: it passes a clean run and catches each
kind of problem it is there to catch (a lost order, a duplicated one, one nobody sent, a lost or doubled
ExecutionReport, numbers going back, a gap left unfilled)."""

from __future__ import annotations

from pathlib import Path

from bench.chaos.ledger import (
    LinkNumbers,
    PairLog,
    Received,
    check_links,
    check_pair,
    parse_received,
    read_received,
    read_sent,
)


def lines(*entries: str) -> list[Received]:
    """``"7 12 N"`` -> Received("7", 12, False): the received log's own format."""
    return parse_received("".join(f"{e}\n" for e in entries).encode())


def clean(sent: int = 3) -> tuple[list[Received], list[Received]]:
    """Orders 1..sent at the venue (MsgSeqNum 2, 3, ...) and their reports at the user."""
    venue = lines(*(f"{n} {n + 1} N" for n in range(1, sent + 1)))
    user = lines(*(f"{n} {n + 4} N" for n in range(1, sent + 1)))
    return venue, user


def test_a_clean_pair_has_no_problem_and_is_complete() -> None:
    venue, user = clean()
    ledger = check_pair(PairLog("pair 1", 3, venue, user))
    assert ledger.problems() == []
    assert ledger.complete and ledger.lost == 0 and ledger.duplicated == 0
    assert (ledger.at_venue, ledger.reports) == (3, 3)


def test_an_order_never_at_the_venue_is_lost_and_so_is_its_report() -> None:
    venue, user = clean()
    ledger = check_pair(PairLog("pair 1", 4, venue, user))  # the user sent a 4th order
    assert ledger.orders_lost == ["4"] and not ledger.complete
    assert any("1 orders lost" in line and "ClOrdID 4" in line for line in ledger.problems()), ledger.problems()
    without_report = check_pair(PairLog("pair 1", 3, venue, user[:2]))
    assert without_report.reports_lost == ["3"] and without_report.lost == 1 and not without_report.complete


def test_an_order_twice_without_possdup_is_duplicated_and_with_possdup_is_a_resend() -> None:
    venue, user = clean()
    twice = check_pair(PairLog("pair 1", 3, [*venue, *lines("2 9 N")], user))
    assert twice.orders_duplicated == ["2"] and twice.duplicated == 1
    assert any("twice without PossDupFlag=Y" in line for line in twice.problems())
    resent = check_pair(PairLog("pair 1", 3, [*venue, *lines("2 9 Y")], user))
    assert resent.problems() == [] and resent.orders_resent == 1


def test_a_report_twice_is_duplicated() -> None:
    venue, user = clean()
    ledger = check_pair(PairLog("pair 1", 3, venue, [*user, *lines("1 20 N")]))
    assert ledger.reports_duplicated == ["1"] and ledger.duplicated == 1 and ledger.problems()


def test_an_order_the_user_never_sent_and_a_report_for_no_order_are_caught() -> None:
    venue, user = clean()
    ledger = check_pair(PairLog("pair 1", 3, [*venue, *lines("17 9 N")], [*user, *lines("17 20 N")]))
    assert ledger.orders_unsent == ["17"]
    assert ledger.reports_unexpected == []  # the venue did receive 17: its report is not unexpected
    stray = check_pair(PairLog("pair 1", 3, venue, [*user, *lines("99 20 N")]))
    assert stray.reports_unexpected == ["99"]
    assert any("never received" in line for line in stray.problems())


def test_numbers_going_back_in_a_received_log_are_a_sequence_problem() -> None:
    venue, user = clean()
    ledger = check_pair(PairLog("pair 1", 3, [*venue[:2], *lines("3 2 N")], user))  # 3 came as MsgSeqNum 2 again
    assert ledger.sequence and "venue" in ledger.sequence[0], ledger.sequence
    assert ledger.problems()


def test_a_gap_left_unfilled_and_numbers_never_sent_are_caught_per_connection() -> None:
    assert check_links([LinkNumbers("user1 -> handler1", 40, 40)]) == []
    gap = check_links([LinkNumbers("user1 -> handler1", 40, 37)])
    assert len(gap) == 1 and "3 message(s) never received" in gap[0] and "user1 -> handler1" in gap[0]
    ahead = check_links([LinkNumbers("venue1 -> driven1", 10, 12)])
    assert len(ahead) == 1 and "never sent" in ahead[0]
    unread = check_links([LinkNumbers("driven1 -> venue1", None, 5)])
    assert len(unread) == 1 and "could not be read" in unread[0]


def test_the_readers_take_complete_lines_and_the_users_counter(tmp_path: Path) -> None:
    log = tmp_path / "received.log"
    log.write_bytes(b"1 2 N\n2 3 Y\n3 4")  # the writer is in the middle of the third line
    assert read_received(log) == [Received("1", 2, False), Received("2", 3, True)]
    assert read_received(tmp_path / "missing.log") == []
    counter = tmp_path / "x.next-clordid"
    counter.write_text(f"{8:20d} {31:20d}\n")  # the endpoint's record: next ClOrdID, MsgSeqNum of the last
    assert read_sent(counter) == 7
    assert read_sent(tmp_path / "none") == 0
