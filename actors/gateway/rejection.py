"""What the end user receives for an application message the gateway could not deliver.

When message rejecting is on (``enable_message_rejecting``) and a message
waited longer than its time-to-live, the Driven withholds it from the venue
and the Handler sends the user this reply instead (docs/coordinator.md,
"Late delivery or rejecting"). Pure: a message in, a MsgType and body out.
"""

from __future__ import annotations

from typing import Final

from actors.fix import tags as T
from actors.fix.message import Message
from actors.fix.orders import (
    APPLICATION_NOT_AVAILABLE,
    AVG_PX,
    BUSINESS_MESSAGE_REJECT,
    CL_ORD_ID,
    CUM_QTY,
    EXEC_ID,
    EXEC_TYPE,
    EXECUTION_REPORT,
    LEAVES_QTY,
    NEW_ORDER_SINGLE,
    ORD_REJ_REASON,
    ORD_STATUS,
    ORDER_ID,
    ORDER_QTY,
    OTHER_REJECT_REASON,
    SIDE,
    SYMBOL,
    ExecType,
    OrdStatus,
)

#: Fields of the order echoed back in its rejection, when present.
ECHOED: Final = (CL_ORD_ID, SYMBOL, SIDE, ORDER_QTY)


def refused_text(counterparty: str, text: str, ref_tag: int | None, reason: int | None) -> str:
    """What the user reads about a message ``counterparty`` refused with a session-level Reject."""
    detail = [f"tag {ref_tag}"] if ref_tag is not None else []
    if reason is not None:
        detail.append(f"SessionRejectReason {reason}")
    return f"rejected by {counterparty}: {text or 'no reason given'}" + (f" ({', '.join(detail)})" if detail else "")


def rejection_for(message: Message, text: str, exec_prefix: str) -> tuple[str, list[tuple[int, bytes]]]:
    """The MsgType and body of the reply to an undelivered ``message``.

    An order (NewOrderSingle) gets an ExecutionReport with OrdStatus=Rejected,
    as order-management systems expect; anything else a BusinessMessageReject
    (reason 4, application not available). ``exec_prefix`` makes the ExecID
    unique to the process that rejects.
    """
    reason = text.encode("latin-1", "replace")
    if message.msg_type == NEW_ORDER_SINGLE:
        fields = [(ORDER_ID, b"NONE"), (EXEC_ID, f"{exec_prefix}-{message.seq_num}".encode()),
                  (EXEC_TYPE, ExecType.REJECTED), (ORD_STATUS, OrdStatus.REJECTED)]
        fields += [(tag, value) for tag in ECHOED if (value := message.get(tag)) is not None]
        fields += [(LEAVES_QTY, b"0"), (CUM_QTY, b"0"), (AVG_PX, b"0"), (T.TEXT, reason),
                   (ORD_REJ_REASON, OTHER_REJECT_REASON)]
        return EXECUTION_REPORT, sorted(fields)
    fields = [(T.TEXT, reason), (T.REF_MSG_TYPE, message.msg_type.encode()),
              (T.BUSINESS_REJECT_REASON, APPLICATION_NOT_AVAILABLE)]
    ref = message.get(CL_ORD_ID)
    if ref is not None:
        fields.append((T.BUSINESS_REJECT_REF_ID, ref))
    return BUSINESS_MESSAGE_REJECT, sorted(fields)
