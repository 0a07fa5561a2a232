"""paper-digest: a daily, personal digest of new research papers."""

__version__ = "0.1.0"
