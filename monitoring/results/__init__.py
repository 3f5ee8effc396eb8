"""Results: the respondent table, weighting, population margins, aggregation, indicators,
dashboards, charts and the monitoring database writer, with their tables, pages and API
description."""
