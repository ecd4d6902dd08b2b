"""Datasets: forms and their records, kept in segment tables of a store."""

DEFAULT_DATASET = "responses"  # the dataset of an upload or export that names none
NAME_MAX_CHARS = 100  # Dataset.name's max_length
