"""CSV imports: reading an uploaded file in checkpointed batches into a segment table."""
