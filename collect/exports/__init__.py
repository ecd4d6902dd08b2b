"""CSV exports of a dataset's records in a date range, as pausable jobs."""
