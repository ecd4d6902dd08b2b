"""Uploaded files: where they are kept until their import has read them."""
