"""FIX Antenna's sequence-number policies, applied by the shell around a session.

* explicit numbers in the settings: ``next_sender`` / ``next_target`` other
  than 0 override what the store holds at start (0 = restore from the store);
* ``reset_after_24h`` (ResetSeqNumAfter24hours): before a Logon, if the
  store's sequence was created 24 hours ago or more, both numbers go back to
  1; an initiator says so with ResetSeqNumFlag=Y in its Logon so that the
  counterparty resets too;
* ``reset_on_new_window``: the same at the first Logon of each new schedule
  window (the window's start is after the store's sequence was created);
* ForceSeqNumReset is ``SessionConfig.reset_on_logon``;
* reset by removing the store: ``fixmesh store reset`` (end of day).
"""

from __future__ import annotations

from dataclasses import dataclass

from actors.fix.timefmt import NS_PER_S
from actors.store import MessageStore

DAY_NS = 24 * 3600 * NS_PER_S


@dataclass(frozen=True, slots=True)
class SequencePolicy:
    next_sender: int = 0
    next_target: int = 0
    reset_after_24h: bool = False
    #: Reset at the first Logon of each new schedule window.
    reset_on_new_window: bool = False

    def __post_init__(self) -> None:
        if self.next_sender < 0 or self.next_target < 0:
            raise ValueError("next_sender and next_target must be >= 0 (0 = restore from the store)")

    def start_numbers(self, store: MessageStore) -> tuple[int, int]:
        """The numbers a session starts with; explicit ones are written to the store."""
        if self.next_sender:
            store.set_next_sender_seq(self.next_sender)
        if self.next_target:
            store.set_next_target_seq(self.next_target)
        return store.next_sender_seq, store.next_target_seq

    def reset_due(self, store: MessageStore, utc_ns: int, window_start_ns: int | None = None) -> bool:
        """Whether this Logon starts a new sequence (``window_start_ns``: the schedule window now open)."""
        if self.reset_after_24h and utc_ns - store.creation_time_ns >= DAY_NS:
            return True
        return (self.reset_on_new_window and window_start_ns is not None
                and store.creation_time_ns < window_start_ns)
