"""FCM's error answers → outcomes: FcmError.errorCode first, then error.status, then the
HTTP status (a proxy's page has neither)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from delivery_svc.providers.fcm import read_answer, refusal

FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"


def body(status: str, message: str, *details: dict[str, Any]) -> bytes:
    return json.dumps(
        {"error": {"code": 0, "message": message, "status": status, "details": list(details)}}
    ).encode()


def fcm(code: str) -> dict[str, Any]:
    return {"@type": FCM_ERROR, "errorCode": code}


def violation(field: str) -> dict[str, Any]:
    return {"@type": BAD_REQUEST, "fieldViolations": [{"field": field, "description": "bad"}]}


GONE, PERMANENT, TRANSIENT = "gone", "permanent", "transient"

CASES = [
    (404, body("NOT_FOUND", "Requested entity was not found.", fcm("UNREGISTERED")), GONE,
     "404 UNREGISTERED: Requested entity was not found."),
    (400, body("INVALID_ARGUMENT", "The registration token is not a valid FCM registration "
               "token"), GONE, "400 INVALID_ARGUMENT: The registration token"),
    (400, body("INVALID_ARGUMENT", "Request contains an invalid argument.",
               fcm("INVALID_ARGUMENT"), violation("message.token")), GONE, "INVALID_ARGUMENT"),
    (400, body("INVALID_ARGUMENT", "Invalid value at 'message.data[0].value' (TYPE_STRING), 3",
               violation("message.data[0].value")), PERMANENT, "message.data[0].value"),
    (404, body("NOT_FOUND", "Requested entity was not found."), PERMANENT,
     "404 NOT_FOUND: Requested entity was not found.; check that project p1 exists"),
    (403, body("PERMISSION_DENIED", "Permission 'cloudmessaging.messages.create' denied"),
     PERMANENT, "may send for it"),
    (403, body("PERMISSION_DENIED", "SenderId mismatch", fcm("SENDER_ID_MISMATCH")), PERMANENT,
     "403 SENDER_ID_MISMATCH: SenderId mismatch; the token was registered for another"),
    (401, body("UNAUTHENTICATED", "Auth error from APNS or Web Push Service",
               fcm("THIRD_PARTY_AUTH_ERROR")), PERMANENT, "upload a valid APNs key"),
    (429, body("RESOURCE_EXHAUSTED", "Quota exceeded"), TRANSIENT, "429 RESOURCE_EXHAUSTED"),
    (429, body("RESOURCE_EXHAUSTED", "Quota exceeded", fcm("QUOTA_EXCEEDED")), TRANSIENT,
     "429 QUOTA_EXCEEDED: Quota exceeded"),
    (503, body("UNAVAILABLE", "The service is currently unavailable.", fcm("UNAVAILABLE")),
     TRANSIENT, "503 UNAVAILABLE"),
    (500, body("INTERNAL", "Internal error encountered.", fcm("INTERNAL")), TRANSIENT,
     "500 INTERNAL"),
    (502, b"<html><body>Bad Gateway</body></html>", TRANSIENT, "502: <html>"),
    (503, b"", TRANSIENT, "503"),
    (408, b"", TRANSIENT, "408"),
    (400, b"not json", PERMANENT, "400: not json"),
]  # fmt: skip


@pytest.mark.parametrize(("status", "raw", "kind", "detail"), CASES)
def test_an_error_answer_maps_to_its_outcome(
    status: int, raw: bytes, kind: str, detail: str
) -> None:
    outcome = refusal(read_answer(status, raw), 12.0, "p1")
    assert not outcome.ok
    assert outcome.provider == "fcm"
    assert outcome.gone is (kind == GONE)
    assert outcome.retryable is (kind == TRANSIENT)
    assert outcome.retry_after == (12.0 if kind == TRANSIENT else None)
    assert detail in outcome.detail


def test_a_long_message_is_cut() -> None:
    answer = read_answer(400, body("INVALID_ARGUMENT", "x" * 5_000))
    assert len(answer.message) == 500
