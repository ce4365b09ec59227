"""The application's synchronous say in what the session does: accept a Logon, resend a message.

Its own module, outside the compiled session core (see docs/decisions.md,
"compiled session core"), because applications subclass it.
"""

from __future__ import annotations

from actors.fix.message import Message


class SessionHooks:
    """Application decisions the session needs synchronously.

    Subclass and override; the defaults accept every logon and resend every
    application message.
    """

    def on_logon_request(self, logon: Message) -> str | None:
        """Return a refusal text to refuse the Logon (it is sent in a Logout), or None."""
        return None

    def on_resend(self, message: Message) -> bool:
        """Return False to replace this stored message by a gap fill when resending."""
        return True
