"""The surveys' part of the OpenAPI document (paths under ``/survey-sessions``).

Answers are JSON values keyed by answer key: a choice name (``"60-69"``), a list of
choice names for multiple choice, a number, or text; rating items are keyed by item
name (``"mot_001": "4"``). Each page post carries the ``revision`` the client saw.
A repeat page is asked once per instance: its page name is ``page[i]`` and its answer
keys ``question[i]`` (from 1); a repeat without a count ends each instance with "add
another?" (``page[0]``: ``"yes"`` or ``"no"``), stored as the number of instances.
"""
from __future__ import annotations

from .definition import QUESTION_TYPES

#: how a page shows a question (presenting.widget)
WIDGETS = ["radio", "checkbox", "select", "likert", "grid", "textarea", "multiline",
           "number", "date", "month", "time", "datetime", "range", "read_only", "note"]

_TOKEN = {"name": "token", "in": "path", "required": True,
          "schema": {"type": "string", "minLength": 16, "maxLength": 64}}
_LOCALE = {"name": "locale", "in": "query", "required": False,
           "schema": {"type": "string", "enum": ["zh_CN", "en"]}}
_ERR = {"$ref": "#/components/responses/Error"}
_STATE = {"description": "the session's state", "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/SurveyState"}}}}
_WITH_STATE = {"description": "error with the current state", "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/SurveyErrorWithState"}}}}
_RESULT = {"description": "scale scores", "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/SurveyResult"}}}}

SPEC = {
    "tags": [{"name": "survey", "description": "The learning-needs survey, page by page"}],
    "paths": {
        "/survey-sessions": {"post": {
            "tags": ["survey"], "operationId": "startSurveySession",
            "summary": "Start a survey session (the published version); returns its link "
                       "token. With test_session_token, the survey of that ability-test "
                       "session is started or, when it exists, returned (200)",
            "requestBody": {"required": False, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/StartSurvey"}}}},
            "responses": {"201": _STATE, "200": _STATE, "400": _ERR, "404": _ERR}}},
        "/survey-sessions/{token}": {"get": {
            "tags": ["survey"], "operationId": "getSurveySession",
            "summary": "The current page with its questions (relevance applied), choices and "
                       "texts in the locale, and the answers so far",
            "parameters": [_TOKEN, _LOCALE], "responses": {"200": _STATE, "404": _ERR}}},
        "/survey-sessions/{token}/pages/{page}": {"post": {
            "tags": ["survey"], "operationId": "postSurveyPage",
            "summary": "Answer a page. Posting the same answers again is harmless; a stale "
                       "revision with other answers is a 409 with the current state; "
                       "invalid answers are a 422 listing each field",
            "parameters": [_TOKEN, {"name": "page", "in": "path", "required": True,
                                    "description": "the page name, or page[i] for "
                                                   "instance i of a repeat",
                                    "schema": {"type": "string", "maxLength": 80}}],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/PagePost"}}}},
            "responses": {"200": _STATE, "400": _ERR, "404": _ERR, "409": _WITH_STATE,
                          "422": _WITH_STATE}}},
        "/survey-sessions/{token}/back": {"post": {
            "tags": ["survey"], "operationId": "surveyBack",
            "summary": "Go back to the previous page (answers are kept)",
            "parameters": [_TOKEN],
            "requestBody": {"required": False, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/BackPost"}}}},
            "responses": {"200": _STATE, "404": _ERR, "409": _ERR}}},
        "/survey-sessions/{token}/finish": {"post": {
            "tags": ["survey"], "operationId": "finishSurvey",
            "summary": "Finish: every asked question is checked, answers of skipped "
                       "questions are dropped and scale scores stored; harmless twice",
            "parameters": [_TOKEN],
            "responses": {"200": _RESULT, "404": _ERR, "409": _ERR, "422": _WITH_STATE}}},
        "/survey-sessions/{token}/withdraw": {"post": {
            "tags": ["survey"], "operationId": "withdrawSurvey",
            "summary": "Withdraw from the survey: every answer and scale score is deleted "
                       "and the session ended with status withdrawn; the link then shows "
                       "that the data was withdrawn. Aggregates already published stay. "
                       "Repeating it is harmless (answers_deleted 0)",
            "parameters": [_TOKEN],
            "responses": {"200": {"description": "withdrawn", "content": {
                "application/json": {"schema": {
                    "type": "object", "required": ["status", "answers_deleted"],
                    "properties": {"status": {"type": "string", "enum": ["withdrawn"]},
                                   "answers_deleted": {"type": "integer"}}}}}},
                "404": _ERR}}},
        "/survey-sessions/{token}/result": {"get": {
            "tags": ["survey"], "operationId": "getSurveyResult",
            "summary": "Scale scores (sum, and IRT theta/SE where calibrated)",
            "parameters": [_TOKEN], "responses": {"200": _RESULT, "404": _ERR, "409": _ERR}}},
    },
    "components": {"schemas": {
        "StartSurvey": {"type": "object", "additionalProperties": False, "properties": {
            "survey": {"type": "string", "minLength": 1, "maxLength": 64},
            "locale": {"type": "string", "enum": ["zh_CN", "en"]},
            "test_session_token": {"type": "string", "minLength": 16, "maxLength": 64}}},
        "AnswerValue": {"oneOf": [
            {"type": "string", "maxLength": 2000}, {"type": "number"}, {"type": "null"},
            {"type": "array", "maxItems": 50, "items": {"type": "string", "maxLength": 32}}]},
        "PagePost": {"type": "object", "required": ["revision", "answers"],
                     "additionalProperties": False, "properties": {
                         "revision": {"type": "integer", "minimum": 0},
                         "answers": {"type": "object", "maxProperties": 200,
                                     "additionalProperties": {
                                         "$ref": "#/components/schemas/AnswerValue"}}}},
        "BackPost": {"type": "object", "additionalProperties": False, "properties": {
            "revision": {"type": "integer", "minimum": 0}}},
        "SurveyState": {"type": "object",
                        "required": ["status", "revision", "page", "page_number",
                                     "page_count", "answers"],
                        "properties": {
                            "token": {"type": "string"},
                            "status": {"type": "string",
                                       "enum": ["started", "finished", "expired",
                                                "withdrawn"]},
                            "revision": {"type": "integer"},
                            "survey": {"type": "object"},
                            "page": {"oneOf": [
                                {"$ref": "#/components/schemas/SurveyPage"},
                                {"type": "null"}]},
                            "page_number": {"type": "integer"},
                            "page_count": {"type": "integer"},
                            "can_go_back": {"type": "boolean"},
                            "complete": {"type": "boolean"},
                            "answers": {"type": "object"}}},
        "SurveyPage": {
            "type": "object", "required": ["name", "title", "questions"], "properties": {
                "name": {"type": "string", "description": "the page to post to: the "
                         "page's name, or page[i] for instance i of a repeat"},
                "page": {"type": "string"},
                "instance": {"type": ["integer", "null"], "minimum": 1},
                "instances": {"type": ["integer", "null"], "description": "instances "
                              "of the repeat so far"},
                "title": {"type": "string", "description": "with the instance number on a "
                          "repeat (家庭成员 2/3)"},
                "questions": {"type": "array", "items": {
                    "$ref": "#/components/schemas/SurveyQuestion"}},
                "add_another": {"type": ["object", "null"], "properties": {
                    "name": {"type": "string"}, "label": {"type": "string"},
                    "value": {"type": ["string", "null"], "enum": ["yes", "no", None]},
                    "error": {"type": ["string", "null"]},
                    "choices": {"type": "array", "items": {"type": "object"}}}}}},
        "SurveyQuestion": {
            "type": "object", "required": ["name", "type", "widget", "label"], "properties": {
                "name": {"type": "string", "description": "the answer key (question[i] "
                         "on a repeat instance)"},
                "question": {"type": "string"},
                "type": {"type": "string", "enum": [
                    t for t in QUESTION_TYPES if t not in (
                        "calculate", "start", "end", "today", "deviceid")]},
                "widget": {"type": "string", "enum": WIDGETS},
                "appearance": {"type": ["string", "null"]},
                "label": {"type": "string"}, "hint": {"type": ["string", "null"]},
                "required": {"type": "boolean"},
                "read_only": {"type": "boolean", "description": "shown with its value "
                              "(display_value), not posted"},
                "display_value": {"type": "string"},
                "choices": {"type": "array", "description": "after the question's "
                            "choice_filter, when it has one", "items": {
                                "type": "object", "properties": {
                                    "name": {"type": "string"},
                                    "label": {"type": "string"}}}},
                "value": {"description": "the answer, or the question's default as form "
                          "text"},
                "error": {"type": ["string", "null"]},
                "min": {"type": ["number", "null"]}, "max": {"type": ["number", "null"]},
                "step": {"type": "number"},
                "values": {"type": "array", "items": {"type": "string"},
                           "description": "a short range's values"},
                "items": {"type": "array", "items": {"type": "object"}},
                "other": {"type": "boolean"}, "other_name": {"type": "string"}}},
        "SurveyErrorWithState": {"allOf": [{"$ref": "#/components/schemas/Error"}, {
            "type": "object", "properties": {
                "state": {"$ref": "#/components/schemas/SurveyState"}}}]},
        "SurveyResult": {"type": "object", "required": ["status", "scales"], "properties": {
            "status": {"type": "string"},
            "scales": {"type": "object", "additionalProperties": {
                "type": "object", "properties": {
                    "n_items": {"type": "integer"}, "n_answered": {"type": "integer"},
                    "sum": {"type": ["number", "null"]},
                    "method": {"type": ["string", "null"]},
                    "theta": {"type": ["number", "null"]},
                    "se": {"type": ["number", "null"]},
                    "calibration_id": {"type": ["integer", "null"]}}}}}},
    }},
}
