"""The receiving rules' counters (PROTOCOL.md), one object per decoder."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class DecoderStats:
    frames_ok: int = 0
    crc_errors: int = 0
    header_errors: int = 0
    skipped_bytes: int = 0
    seq_lost: int = 0
    duplicates: int = 0  # frames with the previous frame's seq (d = 0): dropped, never delivered twice
    seq_resets: int = 0  # frames whose seq went back (d >= 2**31): a new base, never counted as loss
    samples: int = 0
    samples_lost: int = 0
    decode_errors: int = 0
    truncated: int = 0  # an incomplete frame cut off by the end of input

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
