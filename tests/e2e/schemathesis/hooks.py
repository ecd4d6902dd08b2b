"""Loaded by schemathesis (SCHEMATHESIS_HOOKS): how to send the body of a tus chunk."""

import schemathesis

# A tus chunk is raw bytes, whatever its media type's name says.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
