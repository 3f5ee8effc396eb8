"""The adaptive test's part of the OpenAPI document."""
from __future__ import annotations

_TOKEN = {"name": "token", "in": "path", "required": True,
          "schema": {"type": "string", "minLength": 16, "maxLength": 64}}
_STEP = {"200": {"description": "the next step", "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/TestStep"}}}},
    "400": {"$ref": "#/components/responses/Error"},
    "404": {"$ref": "#/components/responses/Error"},
    "409": {"$ref": "#/components/responses/Error"}}

SPEC = {
    "tags": [{"name": "test", "description": "The adaptive lifelong-learning ability test"}],
    "paths": {
        "/sessions": {"post": {
            "tags": ["test"], "operationId": "startSession",
            "summary": "Start a test session (after consent); returns the link token",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/StartSession"}}}},
            "responses": {"201": {"description": "started", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/TestStep"}}}},
                "400": {"$ref": "#/components/responses/Error"},
                "404": {"$ref": "#/components/responses/Error"},
                "503": {"$ref": "#/components/responses/Error"}}}},
        "/sessions/{token}": {"get": {
            "tags": ["test"], "operationId": "getSession",
            "summary": "The session's current step (resume from here)",
            "parameters": [_TOKEN], "responses": _STEP}},
        "/sessions/{token}/background": {"post": {
            "tags": ["test"], "operationId": "setBackground",
            "summary": "Answer the background questions",
            "parameters": [_TOKEN],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Background"}}}},
            "responses": _STEP}},
        "/sessions/{token}/answers": {"post": {
            "tags": ["test"], "operationId": "postAnswer",
            "summary": "Answer the item at a position; resending the same answer is harmless, "
                       "a different answer at an answered position is a 409",
            "parameters": [_TOKEN],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/AnswerPost"}}}},
            "responses": _STEP}},
        "/sessions/{token}/withdraw": {"post": {
            "tags": ["test"], "operationId": "withdrawSession",
            "summary": "Withdraw from the test: the answers are deleted (the item bank's "
                       "calibration copies too), the background answers cleared and the "
                       "session ended with status withdrawn; the link then shows that the "
                       "data was withdrawn. Aggregates already published stay. Repeating "
                       "it is harmless (answers_deleted 0)",
            "parameters": [_TOKEN],
            "responses": {"200": {"description": "withdrawn", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Withdrawn"}}}},
                "404": {"$ref": "#/components/responses/Error"}}}},
        "/sessions/{token}/result": {"get": {
            "tags": ["test"], "operationId": "getResult", "summary": "The result",
            "parameters": [_TOKEN],
            "responses": {"200": {"description": "result", "content": {"application/json": {
                "schema": {"type": "object"}}}},
                "404": {"$ref": "#/components/responses/Error"},
                "409": {"$ref": "#/components/responses/Error"}}}},
    },
    "components": {"schemas": {
        "StartSession": {"type": "object", "required": ["consent"],
                         "additionalProperties": False, "properties": {
                             "instrument": {"type": "string", "maxLength": 32},
                             "locale": {"type": "string", "enum": ["zh_CN", "en"]},
                             "consent": {"type": "boolean", "const": True},
                             "background": {"$ref": "#/components/schemas/Background"}}},
        # answers are checked against their choices by the service (400
        # ``invalid_background`` with one detail {name, message} per field); the schema only
        # bounds the size
        "Background": {"type": "object", "additionalProperties": False, "properties": {
            k: {"type": "string", "maxLength": 256}
            for k in ("age_band", "sex", "district", "street", "occupation", "education")}},
        "AnswerPost": {"type": "object", "required": ["position", "version", "choice"],
                       "additionalProperties": False, "properties": {
                           "position": {"type": "integer", "minimum": 1, "maximum": 1000},
                           "version": {"type": "integer", "minimum": 1},
                           "choice": {"type": "integer", "minimum": 1, "maximum": 20},
                           "response_ms": {"type": "integer", "minimum": 0,
                                           "maximum": 86400000}}},
        "Withdrawn": {"type": "object", "required": ["status", "answers_deleted"],
                      "properties": {"status": {"type": "string", "enum": ["withdrawn"]},
                                     "answers_deleted": {"type": "integer"}}},
        "TestStep": {"type": "object", "required": ["status", "position", "answered"],
                     "properties": {
                         "token": {"type": "string"},
                         "status": {"type": "string", "enum": [
                             "consent", "background", "testing", "finished", "expired",
                             "withdrawn"]},
                         "position": {"type": "integer"}, "answered": {"type": "integer"},
                         "estimated_remaining": {"type": "integer"},
                         "item": {"type": ["object", "null"]},
                         "result": {"type": ["object", "null"]}}},
    }},
}
