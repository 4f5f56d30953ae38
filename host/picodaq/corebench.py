"""Moved to picodaq.bench (`picodaq bench`); these names stay importable from here."""
from .bench.frames import FrameStream, capture, encode_counts, writer_process

__all__ = ["FrameStream", "capture", "encode_counts", "writer_process"]
