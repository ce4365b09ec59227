"""The application's synchronous say in what the session does: accept a Logon, resend a message.

Its own module, outside the compiled session core (see docs/decisions.md,
"compiled session core"), because applications subclass it.

Hooks are decisions, not actions: each receives the time of the call and
returns a value; whatever should happen because of it (an event, a rejected
message going back to its origin) comes out of the session as an output
(``actors.fix.outputs.Withheld``) that the shell carries out.
"""

from __future__ import annotations

from actors.fix.message import Message
from actors.fix.timefmt import Instant


class SessionHooks:
    """Application decisions the session needs synchronously.

    Subclass and override; the defaults accept every logon and resend every
    application message.
    """

    def on_logon_request(self, logon: Message, now: Instant) -> str | None:
        """Return a refusal text to refuse the Logon (it is sent in a Logout), or None."""
        return None

    def on_resend(self, message: Message, now: Instant) -> str | None:
        """Return None to resend this stored application message (PossDupFlag=Y), or a reason to withhold it.

        A withheld message is replaced by a gap fill and reported as a
        ``Withheld`` output carrying the reason.
        """
        return None
