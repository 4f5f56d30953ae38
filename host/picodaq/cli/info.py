"""`picodaq info`: the board's HELLO and STATUS."""

from __future__ import annotations

import argparse
import json
from contextlib import ExitStack

from .. import contracts as C
from ..errors import ContractMismatch
from ..protocol.messages import Hello, Status
from .args import add_json, add_port
from .connect import connect


def args_info(p: argparse.ArgumentParser) -> None:
    add_port(p)
    add_json(p)


def do_info(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        link = connect(args.port, stack).link
        link.stop(wait_status=0.3)
        hello = link.get_info(check_contract=False)
        status = link.get_status()
        ok = hello.contract_hash == C.CONTRACT_HASH
        if args.json:
            doc = {
                "port": link.url,
                "hello": hello.as_dict(),
                "status": status.as_dict(),
                "host_contract_hash": f"0x{C.CONTRACT_HASH:08X}",
                "contract_ok": ok,
            }
            print(json.dumps(doc, indent=2))
        else:
            print(describe(link.url, hello, status))
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


def _duration(ms: int) -> str:
    s = ms // 1000
    h, m = divmod(s // 60, 60)
    return f"{h} h {m:02d} min {s % 60:02d} s" if h else f"{m} min {s % 60:02d} s" if m else f"{ms / 1000:.1f} s"
