"""The command-line client: `collect upload`, `tasks`, `pause`, `resume`, `terminate` and
`export`, against a Collect server at COLLECT_URL with COLLECT_TOKEN."""
