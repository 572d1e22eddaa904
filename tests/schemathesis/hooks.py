"""Hooks for tests/schemathesis/run.sh (SCHEMATHESIS_HOOKS): the JSON-lines body of
`POST /v1/signals` (application/x-ndjson) goes on the wire as text, as text/plain does."""

import schemathesis

schemathesis.serializer.alias("application/x-ndjson", "text/plain")
