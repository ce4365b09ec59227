"""Settings of one FIX session, as the pure core sees them.

Names follow QuickFIX's where one exists (noted per field) so that people who
configure QuickFIX recognise them; ``docs/configuration.md`` has the mapping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from actors.fix.validation import ValidationOptions


class Role(Enum):
    INITIATOR = "initiator"
    ACCEPTOR = "acceptor"


BEGIN_STRINGS = ("FIX.4.0", "FIX.4.1", "FIX.4.2", "FIX.4.3", "FIX.4.4", "FIXT.1.1")

#: The tag a Logon carries its session qualifier in (QuickFIX's SessionQualifier, a user-defined tag).
DEFAULT_QUALIFIER_TAG = 9012


@dataclass(frozen=True, slots=True)
class SessionConfig:
    begin_string: str
    sender_comp_id: str
    target_comp_id: str
    role: Role
    #: HeartBtInt (108) an initiator proposes; an acceptor adopts the peer's.
    heartbeat_interval_s: int = 30
    #: QuickFIX SessionQualifier; sent in the Logon under ``qualifier_tag``.
    session_qualifier: str | None = None
    qualifier_tag: int = DEFAULT_QUALIFIER_TAG
    #: FIXT.1.1 only: DefaultApplVerID (1137) sent in the Logon.
    default_appl_ver_id: str | None = None
    #: QuickFIX ResetOnLogon / FIX Antenna ForceSeqNumReset.
    reset_on_logon: bool = False
    #: QuickFIX ResetOnLogout.
    reset_on_logout: bool = False
    #: QuickFIX ResetOnDisconnect.
    reset_on_disconnect: bool = False
    #: QuickFIX CheckLatency / MaxLatency (seconds).
    check_latency: bool = True
    max_latency_s: float = 120.0
    #: QuickFIX CheckCompID.
    check_comp_id: bool = True
    #: QuickFIX LogonTimeout / LogoutTimeout (seconds).
    logon_timeout_s: float = 10.0
    logout_timeout_s: float = 2.0
    #: A TestRequest goes out after this many heartbeat intervals of silence
    #: (times the number of requests already outstanding plus one); the
    #: connection is dropped after ``2 * test_request_factor`` intervals.
    test_request_factor: float = 1.2
    #: QuickFIX TimestampPrecision; FIX.4.0/4.1 always use seconds.
    timestamp_precision: int = 3
    #: QuickFIX UseDataDictionary plus the Validate* switches.
    use_data_dictionary: bool = True
    validation: ValidationOptions = field(default_factory=ValidationOptions)
    #: Application MsgTypes the application handles; any other is answered
    #: with BusinessMessageReject (35=j), UnsupportedMessageType. None = all.
    app_msg_types: frozenset[str] | None = None
    #: QuickFIX SendRedundantResendRequests.
    send_redundant_resend_requests: bool = False
    #: QuickFIX PersistMessages: resend stored application messages.
    persist_messages: bool = True
    #: Username (553) / Password (554) an initiator sends in its Logon.
    username: str | None = None
    password: str | None = None
    #: QuickFIX EnableNextExpectedMsgSeqNum: send 789 in the Logon.
    send_next_expected_msg_seq_num: bool = False
    #: QuickFIX/J ResendRequestChunkSize: a gap longer than this is asked for in ResendRequests of at most
    #: this many messages, the next once the previous is filled. 0: one ResendRequest for the whole gap.
    resend_request_chunk_size: int = 0
    #: A ResendRequest is answered in parts of at most this many stored messages, so that memory does not
    #: grow with the range (the shell reads, sends and waits for the socket part by part).
    resend_answer_chunk_size: int = 1000
    #: The same ResendRequest (BeginSeqNo, EndSeqNo) again within this many seconds of its answer is not
    #: answered again, and the storm is reported (an event, at most one per interval). 0: answer every one.
    resend_storm_interval_s: float = 2.0

    def __post_init__(self) -> None:
        if self.begin_string not in BEGIN_STRINGS:
            raise ValueError(f"begin_string {self.begin_string!r} is not one of {', '.join(BEGIN_STRINGS)}")
        if self.heartbeat_interval_s < 0:
            raise ValueError("heartbeat_interval_s must be >= 0")
        if self.resend_request_chunk_size < 0:
            raise ValueError("resend_request_chunk_size must be >= 0 (0: the whole gap in one ResendRequest)")
        if self.resend_answer_chunk_size < 1:
            raise ValueError("resend_answer_chunk_size must be >= 1")
        if self.resend_storm_interval_s < 0:
            raise ValueError("resend_storm_interval_s must be >= 0 (0: answer every ResendRequest)")
        if self.begin_string == "FIXT.1.1" and not self.default_appl_ver_id:
            raise ValueError("a FIXT.1.1 session needs default_appl_ver_id (e.g. 9 for FIX.5.0SP2)")

    @property
    def is_fixt(self) -> bool:
        return self.begin_string == "FIXT.1.1"

    @property
    def version_rank(self) -> int:
        """40, 41, 42, 43, 44, or 50 for FIXT: for 'at least FIX.4.2' rules."""
        if self.is_fixt:
            return 50
        return int(self.begin_string[4] + self.begin_string[6])

    @property
    def effective_timestamp_precision(self) -> int:
        return 0 if self.version_rank < 42 else self.timestamp_precision
