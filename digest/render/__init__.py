"""Rendering: digests to email, feeds, pages and Markdown. Pure functions over view values."""
