"""Order-entry vocabulary by name: the application MsgTypes, tags and values fixmesh's own programs use.

The session core needs only the session layer's tags (``tags.py``); the
gateway (rejections it sends back to a user), the venue simulator and the
trader's client build and read orders and ExecutionReports, and name every
tag and value from here instead of writing numbers. Numbers and values are
from FIX 4.2-4.4 (the same in 5.0 SP2). Not compiled: nothing here runs.
"""

from __future__ import annotations

from typing import Final

NEW_ORDER_SINGLE: Final = "D"
ORDER_CANCEL_REQUEST: Final = "F"
EXECUTION_REPORT: Final = "8"
ORDER_CANCEL_REJECT: Final = "9"
BUSINESS_MESSAGE_REJECT: Final = "j"

AVG_PX: Final = 6
CL_ORD_ID: Final = 11
CUM_QTY: Final = 14
EXEC_ID: Final = 17
EXEC_TRANS_TYPE: Final = 20
HANDL_INST: Final = 21
LAST_PX: Final = 31
LAST_QTY: Final = 32
ORDER_ID: Final = 37
ORDER_QTY: Final = 38
ORD_STATUS: Final = 39
ORD_TYPE: Final = 40
ORIG_CL_ORD_ID: Final = 41
PRICE: Final = 44
SIDE: Final = 54
SYMBOL: Final = 55
TRANSACT_TIME: Final = 60
CXL_REJ_REASON: Final = 102
ORD_REJ_REASON: Final = 103
EXEC_TYPE: Final = 150
LEAVES_QTY: Final = 151
CXL_REJ_RESPONSE_TO: Final = 434

SIDE_BUY: Final = b"1"
SIDE_SELL: Final = b"2"
ORD_TYPE_MARKET: Final = b"1"
ORD_TYPE_LIMIT: Final = b"2"


class OrdStatus:
    """OrdStatus (39) values the simulator uses."""

    NEW: Final = b"0"
    PARTIALLY_FILLED: Final = b"1"
    FILLED: Final = b"2"
    CANCELED: Final = b"4"
    REJECTED: Final = b"8"


class ExecType:
    """ExecType (150). FIX 4.3 replaced 4.2's Partial fill (1) and Fill (2) with Trade (F)."""

    NEW: Final = b"0"
    PARTIAL_FILL_42: Final = b"1"
    FILL_42: Final = b"2"
    CANCELED: Final = b"4"
    REJECTED: Final = b"8"
    TRADE: Final = b"F"


#: CxlRejReason (102).
TOO_LATE_TO_CANCEL: Final = b"0"
UNKNOWN_ORDER: Final = b"1"
#: OrdRejReason (103).
UNKNOWN_SYMBOL: Final = b"1"
EXCEEDS_LIMIT: Final = b"3"
DUPLICATE_ORDER: Final = b"6"
#: BusinessRejectReason (380): Conditionally required field missing.
REQUIRED_FIELD_MISSING: Final = b"5"
#: BusinessRejectReason (380): Application not available.
APPLICATION_NOT_AVAILABLE: Final = b"4"
#: OrdRejReason (103): Other.
OTHER_REJECT_REASON: Final = b"99"
