"""The application's synchronous say in what the session does: accept a Logon, resend a message.

Its own module, outside the compiled session core (see docs/decisions.md,
"compiled session core"), because applications subclass it.

Hooks are decisions, not actions: each receives the time of the call and
returns a value; whatever should happen because of it (an event, a rejected
message going back to its origin) comes out of the session as an output
(``actors.fix.outputs.Withheld``) that the shell carries out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from actors.fix.message import Message
from actors.fix.timefmt import Instant


@dataclass(frozen=True, slots=True)
class LogonHold:
    """The answer "not yet" to a Logon: the acceptor waits for ``Session.answer_logon``.

    A gateway holds its user's Logon until the session it depends on (the
    venue's) is up, so that a user who is told "logged on" can trade at once.
    The wait is bounded by the session's ``logon_timeout_s``: if no answer
    comes by then, the session refuses the Logon itself with ``why`` followed
    by " within N s" in the Logout's text, so the user learns why it waited
    for nothing.
    """

    why: str = "no answer to the Logon"


#: Hold the Logon with the default timeout text.
HOLD_LOGON: Final = LogonHold()


class SessionHooks:
    """Application decisions the session needs synchronously.

    Subclass and override; the defaults accept every logon and resend every
    application message.
    """

    def on_logon_request(self, logon: Message, now: Instant) -> str | LogonHold | None:
        """Return None to accept the Logon, a refusal text to refuse it (sent in a Logout), or a ``LogonHold``.

        Only an acceptor asks. A held Logon stays in LOGON_RECEIVED until the
        application calls ``Session.answer_logon`` or the logon timeout ends it.
        """
        return None

    def on_resend(self, message: Message, now: Instant) -> str | None:
        """Return None to resend this stored application message (PossDupFlag=Y), or a reason to withhold it.

        A withheld message is replaced by a gap fill and reported as a
        ``Withheld`` output carrying the reason.
        """
        return None
