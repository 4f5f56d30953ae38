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
    samples: int = 0
    samples_lost: int = 0
    decode_errors: int = 0
    truncated: int = 0  # an incomplete frame cut off by the end of input

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
