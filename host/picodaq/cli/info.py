"""`picodaq info`: the board's HELLO and STATUS."""

from __future__ import annotations

import argparse
import json
from contextlib import ExitStack

from .. import contracts as C
from ..errors import ContractMismatch
from ..protocol.messages import Hello, Status
from ..recording.config import RING_FLOOR_S, StreamConfig, ring_max_frames
from .args import FORMATS, add_json, add_port, channel_mask, positive_int
from .connect import connect


def args_info(p: argparse.ArgumentParser) -> None:
    add_port(p)
    add_json(p)
    g = p.add_argument_group("the ring's duration for a stream (as `picodaq record` would configure it)")
    g.add_argument("--rate", type=positive_int, default=1000, help="sample instants per second (default 1000)")
    g.add_argument("--channels", type=channel_mask, default=1, help="channel count (8) or list (0,2,4-7)")
    g.add_argument("--fmt", choices=sorted(FORMATS, key=FORMATS.__getitem__), default="int16")
    g.add_argument("--samples-per-frame", type=positive_int, help="instants per SAMPLES frame (default: ~20 ms)")


def do_info(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        link = connect(args.port, stack).link
        link.stop(wait_status=0.3)
        hello = link.get_info(check_contract=False)
        status = link.get_status()
        ok = hello.contract_hash == C.CONTRACT_HASH
        cfg = StreamConfig(
            args.rate, args.channels, fmt=FORMATS[args.fmt], samples_per_frame=args.samples_per_frame or 0
        )
        if args.json:
            doc = {
                "port": link.url,
                "hello": hello.as_dict(),
                "status": status.as_dict(),
                "ring": ring_doc(hello, cfg),
                "host_contract_hash": f"0x{C.CONTRACT_HASH:08X}",
                "contract_ok": ok,
            }
            print(json.dumps(doc, indent=2))
        else:
            print(describe(link.url, hello, status))
            print(ring_line(hello, cfg))
        if not ok:
            raise ContractMismatch(hello.contract_hash, C.CONTRACT_HASH)
        return 0


def describe(url: str, hello: Hello, status: Status) -> str:
    """The board as `picodaq info` shows it: one line per fact."""
    h = hello.as_dict()
    ok = hello.contract_hash == C.CONTRACT_HASH
    fill = status.ring_high_water / status.ring_capacity if status.ring_capacity else 0.0
    return "\n".join(
        [
            f"port            {url}",
            f"board           {h['platform']}, unique id {h['board_id']}",
            f"firmware        version {h['firmware_version']}, protocol {hello.protocol_version}",
            f"contract        {h['contract_hash']} "
            + ("(matches this host)" if ok else f"(this host has 0x{C.CONTRACT_HASH:08X})"),
            f"capabilities    up to {hello.max_channels} channels, {hello.max_rate:,} samples/s across all channels",
            "sources         "
            + (", ".join(h["sources"]) if h["sources"] is not None else "unknown (its HELLO does not say)"),
            f"source          {h['source']} (as last configured)",
            f"state           {status.state_name}; last error: {status.error_name}",
            f"uptime          {_duration(status.uptime_ms)}; {status.frames_sent:,} frames sent",
            f"ring            {status.ring_capacity:,} instants"
            + (f" in {hello.ring_bytes:,} bytes" if hello.ring_bytes is not None else "")
            + f"; high water {status.ring_high_water:,} ({fill:.0%}); {status.samples_dropped:,} instants "
            "dropped in the last stream",
            f"free heap       {status.free_heap:,} bytes",
        ]
    )


def _stream(cfg: StreamConfig) -> str:
    return (
        f"{cfg.rate:,} Hz x {cfg.n_channels} ch {C.FORMAT_NAMES[cfg.fmt]}, "
        f"{cfg.frame_samples()} instants per frame, {cfg.bytes_per_second():,.0f} B/s"
    )


def ring_doc(hello: Hello, cfg: StreamConfig) -> dict | None:
    """The ring's duration for the stream cfg describes (None: the board's HELLO does not say its size)."""
    if hello.ring_bytes is None:
        return None
    most = ring_max_frames(hello.platform)
    seconds = cfg.ring_seconds(hello.ring_bytes, most)
    return {
        "ring_bytes": hello.ring_bytes,
        "rate": cfg.rate,
        "n_channels": cfg.n_channels,
        "fmt": C.FORMAT_NAMES[cfg.fmt],
        "samples_per_frame": cfg.frame_samples(),
        "frames": cfg.ring_frames(hello.ring_bytes, most),
        "seconds": round(seconds, 4),
        "floor_seconds": RING_FLOOR_S,
        "fits": seconds >= RING_FLOOR_S,
    }


def ring_line(hello: Hello, cfg: StreamConfig) -> str:
    """The ring's duration at a stream's rate, channels and format, as the board's rule has it."""
    if hello.ring_bytes is None:
        return "ring duration   unknown (the board's HELLO does not say its ring's size)"
    seconds = cfg.ring_seconds(hello.ring_bytes, ring_max_frames(hello.platform))
    text = f"ring duration   {seconds:.3g} s at {_stream(cfg)}"
    if seconds < RING_FLOOR_S:
        text += f": less than the {RING_FLOOR_S:g} s the board requires, so it refuses this stream"
    return text


def _duration(ms: int) -> str:
    s = ms // 1000
    h, m = divmod(s // 60, 60)
    return f"{h} h {m:02d} min {s % 60:02d} s" if h else f"{m} min {s % 60:02d} s" if m else f"{ms / 1000:.1f} s"
