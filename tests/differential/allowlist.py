"""The differences between QuickFIX's replies and fixmesh's that the differential test accepts, with reasons.

``ALLOWED`` lists the differences that are meant to be there: fixmesh
differs from QuickFIX on purpose, or QuickFIX does something the FIX
specification does not ask for (a quirk fixmesh does not copy). An entry
names the scenario, the versions and the keys that may differ (a tag, or
``event`` for a message or disconnect that only one side has, or ``order``
for the same fields in another order); any other difference in that
scenario still fails. An entry whose difference has gone away fails too,
so the list stays true.

``KNOWN_DEFECTS`` lists differences that are fixmesh's defects, found by
this test and not fixed yet, again with the keys that may differ: those
tests are expected failures, and once the defect is fixed the test fails
("FIXED") until the entry is removed. docs/differential.md has the table of both with the replies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.differential.engines import Outcome

ALL = None


@dataclass(frozen=True)
class Allowed:
    scenario: str
    versions: frozenset[str] | None
    keys: frozenset[str]
    #: "intended" (fixmesh differs on purpose) or "quirk" (QuickFIX's behaviour, not copied).
    kind: str
    reason: str


@dataclass(frozen=True)
class KnownDefect:
    scenario: str
    versions: frozenset[str] | None
    keys: frozenset[str]
    #: One line for the test report.
    summary: str
    #: Both replies and the cause, as far as known.
    details: str


def _v(*keys: str) -> frozenset[str]:
    return frozenset(keys)


FIXT = _v("5.0", "5.0SP1", "5.0SP2")
_LOGON_HELD = (
    "QuickFIX neither answers nor closes the connection of a Logon that fails validation: it logs 'Tried to "
    "send a reject while not logged on' and leaves the connection open (still open after 40 s). fixmesh "
    "closes it at once with nothing sent, as it does with every Logon it cannot accept."
)
_BMR_APPL_VER_ID = (
    "QuickFIX puts DefaultApplVerID (1137) in the body of its BusinessMessageReject; FIX.5.0's dictionaries "
    "do not define 1137 for 35=j, so a validating peer would reject it. fixmesh leaves it out."
)

ALLOWED: tuple[Allowed, ...] = (
    Allowed("logon_no_heartbtint", ALL, _v("event"), "quirk", _LOGON_HELD),
    Allowed("logon_bad_heartbtint", ALL, _v("event"), "quirk", _LOGON_HELD),
    Allowed("logon_bad_heartbtint_4x", ALL, _v("event"), "quirk", _LOGON_HELD),
    Allowed("logon_undefined_tag", ALL, _v("event"), "quirk", _LOGON_HELD),
    Allowed(
        "logon_reset_refused", ALL, _v("event", "34"), "intended",
        "fixmesh applies a Logon's ResetSeqNumFlag (141=Y) only once the Logon is accepted: a refused Logon "
        "resets nothing, and the next Logon goes on in sequence. QuickFIX resets both numbers before it checks "
        "the Logon, so the refused Logon still cost the sequence (its next Logon reply is 34=1 and asks for a "
        "resend from 1).",
    ),
    Allowed(
        "resend_seq_too_high", ALL, _v("event"), "intended",
        "docs/architecture.md, decisions beyond QuickFIX: a ResendRequest whose MsgSeqNum is too high is "
        "answered and the gap before it is asked for at once (35=2 7=2); its own number is consumed when the "
        "gap is filled. QuickFIX answers it but asks for nothing until the next message, and then asks for the "
        "ResendRequest's own number again.",
    ),
    Allowed(
        "resend_begin_after_end", ALL, _v("event"), "quirk",
        "To a ResendRequest 7=3 16=2 (BeginSeqNo after EndSeqNo) QuickFIX sends a SequenceReset-GapFill "
        "34=3 36=3 carrying its next MsgSeqNum as if resent, and then sends its next message with 34=3 again. "
        "fixmesh resends nothing for an empty range.",
    ),
    Allowed(
        "reject_group_order", ALL, _v("58", "371", "373"), "quirk",
        "A LinesOfText entry that starts with 354 instead of its delimiter 58: QuickFIX reports 'Required tag "
        "missing' 371=58 373=1; fixmesh reports the SessionRejectReason FIX defines for it, 15 'Repeating group "
        "fields out of order', with 371=354.",
    ),
    Allowed(
        "reject_missing_seq_num", ALL, _v("event"), "intended",
        "A message without MsgSeqNum: fixmesh sends Logout 58='MsgSeqNum (34) missing' and disconnects, as the "
        "FIX session layer prescribes; QuickFIX drops the message silently (its log says 'Incorrect data format "
        "for value with tag: 34').",
    ),
    Allowed(
        "reject_seq_num_not_number", ALL, _v("event"), "intended",
        "MsgSeqNum 34=abc: fixmesh treats an unreadable MsgSeqNum as a missing one (Logout 'MsgSeqNum (34) "
        "missing' and disconnect), since a Reject would need a RefSeqNum it cannot have; QuickFIX drops the "
        "message silently.",
    ),
    Allowed("app_unsupported", FIXT, _v("1137"), "quirk", _BMR_APPL_VER_ID),
    Allowed("routing_business_reject", FIXT, _v("1137"), "quirk", _BMR_APPL_VER_ID),
)

#: None today: the last two (an order's echo after the session's reply to the next message of the same read,
#: ``burst_order_test_request`` and ``burst_order_logout``) were fixed by handling each inbound message in
#: turn (``Session.more_input``). docs/differential.md keeps them in its table of differences found.
KNOWN_DEFECTS: tuple[KnownDefect, ...] = ()


def _matches(scenario: str, versions: frozenset[str] | None, outcome: Outcome) -> bool:
    return scenario == outcome.scenario.name and (versions is None or outcome.version.key in versions)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    #: "same", "allowed (<kind>)", "known defect", "DIFFERENT", "STALE" or "FIXED".
    summary: str
    message: str
    defect: KnownDefect | None = None


def judge(outcome: Outcome, allowed_list: tuple[Allowed, ...] = ALLOWED,
          defects: tuple[KnownDefect, ...] = KNOWN_DEFECTS) -> Verdict:
    """The verdict on one pair; the lists default to this module's (a test passes its own)."""
    differences = outcome.comparison.differences
    allowed = next((a for a in allowed_list if _matches(a.scenario, a.versions, outcome)), None)
    defect = next((d for d in defects if _matches(d.scenario, d.versions, outcome)), None)
    if allowed is not None:
        if not differences:
            return Verdict(False, "STALE", f"allowlisted ({allowed.reason}) but no difference any more: "
                           "remove the entry from tests/differential/allowlist.py and docs/differential.md")
        extra = outcome.comparison.keys - allowed.keys
        if not extra:
            return Verdict(True, f"allowed ({allowed.kind})", allowed.reason)
        return Verdict(False, "DIFFERENT", f"differences beyond the allowlisted ones ({', '.join(sorted(extra))})")
    if defect is not None:
        if not differences:
            return Verdict(False, "FIXED", f"known defect ({defect.summary}) no longer shows: remove its entry "
                           "from tests/differential/allowlist.py and docs/differential.md")
        extra = outcome.comparison.keys - defect.keys
        if not extra:
            return Verdict(False, "known defect", defect.details, defect)
        return Verdict(False, "DIFFERENT", f"differences beyond the known defect's ({', '.join(sorted(extra))})")
    if differences:
        return Verdict(False, "DIFFERENT", "QuickFIX and fixmesh replied differently")
    return Verdict(True, "same", "")
