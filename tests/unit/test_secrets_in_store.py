"""An initiator's password goes on the wire in its Logon, never into its store."""

from __future__ import annotations

from pathlib import Path

from actors.fix import tags as T
from actors.fix.codec import parse
from actors.fix.hooks import SessionHooks
from actors.fix.message import Message
from actors.fix.timefmt import Instant
from actors.store import Durability, FileStore
from tests.pair import SessionPair, app_payloads, send_orders

SECRET = "s3cr3t-Pa55"


class SeenLogon(SessionHooks):
    """The acceptor's hook: keeps the Logon as it came over the link."""

    def __init__(self) -> None:
        self.logon: Message | None = None

    def on_logon_request(self, logon: Message, now: Instant) -> str | None:
        self.logon = logon
        return None


def test_the_stored_logon_has_its_password_masked_and_the_wire_has_it(tmp_path: Path) -> None:
    store = FileStore(tmp_path, "BUY->SELL", now_ns=0, durability=Durability.OS_BUFFER)
    pair = SessionPair(initiator_store=store, username="trader1", password=SECRET)
    seen = SeenLogon()
    pair.acceptor.driver.session.hooks = seen
    pair.connect()
    assert pair.both_logged_on
    assert seen.logon is not None and seen.logon.get(T.PASSWORD) == SECRET.encode(), "the password went out"
    send_orders(pair.initiator, [1])
    pair.pump()
    assert app_payloads(pair.acceptor.app.messages) == [b"1"], "the session still trades"
    stored_logon = parse(dict(store.get_outgoing(1, 1))[1])
    assert stored_logon.msg_type == "A" and stored_logon.get(T.PASSWORD) == b"***"
    assert stored_logon.get(T.USERNAME) == b"trader1"
    store.close()
    on_disk = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert SECRET.encode() not in on_disk, "the password is in the store's files"
