"""Tag numbers and message types the session layer needs by name.

Only the session layer's vocabulary lives here; application tags come from the
data dictionary. Numbers are from the FIX 4.x / FIXT.1.1 specifications.
"""

from __future__ import annotations

from typing import Final

SOH: Final = b"\x01"

#: The most digits an integer field (a tag number, BodyLength, MsgSeqNum, NumInGroup ...) may have:
#: 18 digits always fit a signed 64-bit number, and a longer one is hostile input, not a FIX value
#: (Python's int() refuses over 4,300 digits, and every store keeps 64-bit sequence numbers).
MAX_INT_DIGITS: Final = 18

# Standard header / trailer
BEGIN_STRING: Final = 8
BODY_LENGTH: Final = 9
CHECKSUM: Final = 10
MSG_SEQ_NUM: Final = 34
MSG_TYPE: Final = 35
POSS_DUP_FLAG: Final = 43
SENDER_COMP_ID: Final = 49
SENDER_SUB_ID: Final = 50
SENDING_TIME: Final = 52
TARGET_COMP_ID: Final = 56
TARGET_SUB_ID: Final = 57
POSS_RESEND: Final = 97
ON_BEHALF_OF_COMP_ID: Final = 115
DELIVER_TO_COMP_ID: Final = 128
ON_BEHALF_OF_SUB_ID: Final = 116
DELIVER_TO_SUB_ID: Final = 129
ON_BEHALF_OF_LOCATION_ID: Final = 144
DELIVER_TO_LOCATION_ID: Final = 145
ORIG_SENDING_TIME: Final = 122
LAST_MSG_SEQ_NUM_PROCESSED: Final = 369
APPL_VER_ID: Final = 1128

# Session-level body fields
BEGIN_SEQ_NO: Final = 7
END_SEQ_NO: Final = 16
NEW_SEQ_NO: Final = 36
REF_SEQ_NUM: Final = 45
TEXT: Final = 58
ENCRYPT_METHOD: Final = 98
HEART_BT_INT: Final = 108
TEST_REQ_ID: Final = 112
GAP_FILL_FLAG: Final = 123
RESET_SEQ_NUM_FLAG: Final = 141
REF_TAG_ID: Final = 371
REF_MSG_TYPE: Final = 372
SESSION_REJECT_REASON: Final = 373
BUSINESS_REJECT_REF_ID: Final = 379
BUSINESS_REJECT_REASON: Final = 380
USERNAME: Final = 553
PASSWORD: Final = 554
NEXT_EXPECTED_MSG_SEQ_NUM: Final = 789
DEFAULT_APPL_VER_ID: Final = 1137


class MsgType:
    """Session-level MsgType (35) values."""

    HEARTBEAT: Final = "0"
    TEST_REQUEST: Final = "1"
    RESEND_REQUEST: Final = "2"
    REJECT: Final = "3"
    SEQUENCE_RESET: Final = "4"
    LOGOUT: Final = "5"
    LOGON: Final = "A"
    BUSINESS_MESSAGE_REJECT: Final = "j"


ADMIN_MSG_TYPES: Final = frozenset({"0", "1", "2", "3", "4", "5", "A"})

# Header tags of FIX 4.0 - 5.0 SP2 (union). Used to tell header from body when
# no data dictionary is configured, and to order outgoing headers.
HEADER_TAGS: Final = frozenset(
    {
        8, 9, 35, 34, 43, 49, 50, 52, 56, 57, 97, 115, 116, 122, 128, 129, 142, 143, 144,
        145, 212, 213, 347, 369, 370, 627, 628, 629, 630, 1128, 1129, 1156, 90, 91,
    }
)
TRAILER_TAGS: Final = frozenset({93, 89, 10})

# Length field -> the data field whose value may contain SOH (FIX "data" type).
# A parser must read the data field by length, not up to the next SOH.
DATA_LENGTH_TAGS: Final = {
    90: 91,    # SecureDataLen -> SecureData
    93: 89,    # SignatureLength -> Signature
    95: 96,    # RawDataLength -> RawData
    212: 213,  # XmlDataLen -> XmlData
    348: 349,  # EncodedIssuerLen
    350: 351,  # EncodedSecurityDescLen
    352: 353,  # EncodedListExecInstLen
    354: 355,  # EncodedTextLen
    356: 357,  # EncodedSubjectLen
    358: 359,  # EncodedHeadlineLen
    360: 361,  # EncodedAllocTextLen
    362: 363,  # EncodedUnderlyingIssuerLen
    364: 365,  # EncodedUnderlyingSecurityDescLen
    445: 446,  # EncodedListStatusTextLen
    618: 619,  # EncodedLegIssuerLen
    621: 622,  # EncodedLegSecurityDescLen
    1401: 1402,  # EncryptedPasswordLen
    1403: 1404,  # EncryptedNewPasswordLen
}

# Header routing tags swapped into a Reject's header (QuickFIX "reverse route").
REVERSE_ROUTE: Final = (
    (ON_BEHALF_OF_COMP_ID, DELIVER_TO_COMP_ID),
    (ON_BEHALF_OF_SUB_ID, DELIVER_TO_SUB_ID),
    (ON_BEHALF_OF_LOCATION_ID, DELIVER_TO_LOCATION_ID),
    (DELIVER_TO_COMP_ID, ON_BEHALF_OF_COMP_ID),
    (DELIVER_TO_SUB_ID, ON_BEHALF_OF_SUB_ID),
    (DELIVER_TO_LOCATION_ID, ON_BEHALF_OF_LOCATION_ID),
)
