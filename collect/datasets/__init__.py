"""Datasets (a form's columns) and the tables that hold their records."""
