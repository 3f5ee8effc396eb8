"""The monitoring aggregates' part of the OpenAPI document (staff, session cookie)."""
from __future__ import annotations

from monitoring.results.warehouse import DIMENSIONS

_FILTER = {"in": "query", "required": False,
           "schema": {"type": "string", "minLength": 1, "maxLength": 120}}
_NUM = {"type": ["number", "null"]}

SPEC = {
    "tags": [{"name": "monitoring", "description": "Group-level aggregates from the "
              "monitoring database (staff only; district staff see their district)"}],
    "paths": {
        "/monitoring/aggregates": {"get": {
            "tags": ["monitoring"], "operationId": "listAggregates",
            "summary": "Aggregates (estimates with 95% intervals; suppressed cells have null "
                       "numbers) filtered by campaign, measure and dimension",
            "parameters": [
                {**_FILTER, "name": "campaign"},
                {**_FILTER, "name": "measure"},
                {"name": "dimension", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": list(DIMENSIONS)}},
            ],
            "responses": {
                "200": {"description": "aggregate rows", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/AggregateList"}}}},
                "400": {"$ref": "#/components/responses/Error"},
                "403": {"$ref": "#/components/responses/Error"}}}},
    },
    "components": {"schemas": {
        "AggregateList": {"type": "object", "required": ["items", "truncated"], "properties": {
            "truncated": {"type": "boolean", "description": "more than 5000 rows matched: "
                          "narrow the filters"},
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Aggregate"}}}},
        "Aggregate": {"type": "object", "properties": {
            "campaign": {"type": "string"}, "measure": {"type": "string"},
            "kind": {"type": "string"}, "label_zh": {"type": "string"},
            "label_en": {"type": "string"},
            "dimension": {"type": "string", "enum": list(DIMENSIONS)},
            "group": {"type": "string"}, "district": {"type": "string"},
            "n": {"type": "integer"}, "estimate": _NUM, "se": _NUM, "ci_low": _NUM,
            "ci_high": _NUM, "deff": _NUM, "suppressed": {"type": "boolean"},
            "suppression_reason": {"type": ["string", "null"]},
            "method": {"type": "string"}, "target": _NUM,
            "direction": {"type": ["string", "null"]},
            "judgement": {"type": ["string", "null"]},
            "computed_at": {"type": "string", "format": "date-time"}}},
    }},
}
