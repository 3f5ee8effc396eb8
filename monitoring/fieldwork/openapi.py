"""The invitation-redeem endpoint's part of the OpenAPI document."""
from __future__ import annotations

_SESSION_LINK = {"type": ["object", "null"], "required": ["token", "url", "status"],
                 "properties": {"token": {"type": "string"}, "url": {"type": "string"},
                                "api": {"type": "string"}, "status": {"type": "string"}}}

SPEC = {
    "tags": [{"name": "invitations",
              "description": "Residents entering a sampling campaign with an invitation code"}],
    "paths": {
        "/invitations/redeem": {"post": {
            "tags": ["invitations"], "operationId": "redeemInvitation",
            "summary": "Start or resume the campaign's instruments for an invitation code",
            "description": (
                "The first redeem starts the first instrument and needs the resident's "
                "consent (`consent: true`); later redeems of the same code return the same "
                "sessions (resume). The survey session appears once the test is finished "
                "(or at once in a survey-only campaign). 404 for an unknown or void code "
                "(the same answer for both), 409 `not_yet_open` or `campaign_closed` with "
                "the window in `details`, 429 `throttled` after too many wrong codes from "
                "one address (header Retry-After, in seconds)."),
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/RedeemInvitation"}}}},
            "responses": {
                "200": {"description": "the campaign and the resident's sessions",
                        "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/Redeemed"}}}},
                "400": {"$ref": "#/components/responses/Error"},
                "404": {"$ref": "#/components/responses/Error"},
                "409": {"$ref": "#/components/responses/Error"},
                "429": {"$ref": "#/components/responses/Error"}}}},
    },
    "components": {"schemas": {
        "RedeemInvitation": {
            "type": "object", "required": ["code"], "additionalProperties": False,
            "properties": {
                "code": {"type": "string", "minLength": 1, "maxLength": 64},
                "locale": {"type": "string", "enum": ["zh_CN", "en"]},
                "consent": {"type": "boolean"}}},
        "Redeemed": {
            "type": "object",
            "required": ["campaign", "instruments", "test_session", "survey_session",
                         "status", "next"],
            "properties": {
                "campaign": {"type": "object", "properties": {
                    "code": {"type": "string"}, "name": {"type": "string"},
                    "district": {"type": "string"}, "opens_at": {"type": "string"},
                    "closes_at": {"type": "string"}, "timezone": {"type": "string"}}},
                "instruments": {"type": "array",
                                "items": {"type": "string", "enum": ["test", "survey"]}},
                "test_session": _SESSION_LINK,
                "survey_session": _SESSION_LINK,
                "next": {"type": "string", "enum": ["consent", "test", "survey", "done"]},
                "status": {"type": "string",
                           "enum": ["issued", "started", "completed"]}}},
    }},
}
