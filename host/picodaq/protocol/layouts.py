"""Partial views of payload layouts, derived from the generated contracts.

The decoder and the receiver read a few fields of every SAMPLES header; the
structs here read exactly those, skipping the others as pad bytes, so the
field order and offsets come from contracts.toml and are written nowhere else.
"""

from __future__ import annotations

import re
import struct

from .. import contracts as C

_TOKEN = re.compile(r"(\d*)([a-zA-Z?])")


def _tokens(fmt: str) -> list[str]:
    body = fmt[1:] if fmt[:1] in "<>!=@" else fmt
    return [count + code for count, code in _TOKEN.findall(body)]


def field_struct(fmt: str, fields: tuple[str, ...], names: tuple[str, ...]) -> struct.Struct:
    """A struct over a whole payload layout (fmt, fields) that unpacks only `names`, in layout order."""
    tokens = _tokens(fmt)
    if len(tokens) != len(fields):
        raise ValueError(f"{fmt!r} has {len(tokens)} fields, {len(fields)} names given")
    picked = [f for f in fields if f in names]
    if tuple(picked) != tuple(names):
        raise ValueError(f"{names} must be fields of {fields}, in that order")
    order = fmt[0] if fmt[:1] in "<>!=@" else ""
    out = [t if f in names else f"{struct.calcsize(order + t)}x" for t, f in zip(tokens, fields)]
    return struct.Struct(order + "".join(out))


def field_offset(fmt: str, fields: tuple[str, ...], name: str) -> int:
    """Byte offset of field `name` in the payload layout (fmt, fields)."""
    order = fmt[0] if fmt[:1] in "<>!=@" else ""
    offset = 0
    for t, f in zip(_tokens(fmt), fields):
        if f == name:
            return offset
        offset += struct.calcsize(order + t)
    raise ValueError(f"no field {name!r} in {fields}")


# (first_sample_index, n_channels, fmt, n_samples): what the decoder checked of a SAMPLES header
SamplesKey = tuple[int, int, int, int]

SAMPLES_HEAD_SIZE = struct.calcsize(C.SAMPLES_FORMAT)
# what the decoder checks of every SAMPLES header: (first_sample_index, n_channels, fmt, n_samples)
SAMPLES_KEY = field_struct(C.SAMPLES_FORMAT, C.SAMPLES_FIELDS, ("first_sample_index", "n_channels", "fmt", "n_samples"))
# the block's timing, read from its buffer when asked: (t0_us, period_ns), and the timing of its last instant
SAMPLES_T0_OFFSET = field_offset(C.SAMPLES_FORMAT, C.SAMPLES_FIELDS, "t0_us")
SAMPLES_TIMING = struct.Struct("<" + _tokens(C.SAMPLES_FORMAT)[1] + _tokens(C.SAMPLES_FORMAT)[2])
SAMPLES_TIMING_AND_SHAPE = field_struct(
    "<" + "".join(_tokens(C.SAMPLES_FORMAT)[1:]),
    C.SAMPLES_FIELDS[1:],
    ("t0_us", "period_ns", "n_channels", "fmt", "n_samples"),
)
assert C.SAMPLES_FIELDS[1:3] == ("t0_us", "period_ns")
