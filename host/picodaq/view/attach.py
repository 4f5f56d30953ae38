"""`--view [HOST:PORT]` for `picodaq record` and `picodaq stream`: what the CLI calls.

    add_view_arg(parser)                       the flag
    open_view(listen, recordings, stack, title, quiet)
                                               once the Recording exists, before it starts:
                                               hangs an EnvelopeObserver on its receiver's taps
                                               and its pipeline's gaps and markers, starts the
                                               server, says where on stderr, and stops it (with a
                                               one-line account) when the stack unwinds

It reads the Recording through a few public names only (receiver, pipeline, config, and the
counters the terminal view reads too), so the recorder can change around it.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from typing import Any

from ..errors import UsageError
from .observer import EnvelopeObserver
from .server import ViewServer

DEFAULT = "127.0.0.1:0"


def add_view_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--view",
        nargs="?",
        const=DEFAULT,
        metavar="HOST:PORT",
        help="a live plot in the browser: serve it on HOST:PORT (default 127.0.0.1 and a free port; "
        "the address is printed). With several boards, the first is shown",
    )


def parse_listen(text: str) -> tuple[str, int]:
    """HOST:PORT, HOST, :PORT or PORT ([::1]:PORT for IPv6); port 0 picks a free one."""
    host, port = "127.0.0.1", "0"
    t = text.strip()
    if t.startswith("["):
        h, _, rest = t[1:].partition("]")
        host, port = h, rest.lstrip(":") or "0"
    elif t.isdigit():
        port = t
    elif ":" in t:
        h, _, port = t.rpartition(":")
        host = h or host
    elif t:
        host = t
    if not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        raise UsageError(f"--view {text}: not HOST:PORT (e.g. 127.0.0.1:8080, or :0 for a free port)")
    return host, int(port)


def recording_counters(rec: Any) -> dict[str, Any]:
    """The link's counters for the page's bar, from what the Recording offers (missing ones left out)."""
    d: dict[str, Any] = {}
    receiver = getattr(rec, "receiver", None)
    stats = getattr(receiver, "stats", None)
    if stats is not None and hasattr(stats, "as_dict"):
        d.update(stats.as_dict())
    for name in ("elapsed", "device_dropped", "state", "bytes_in"):
        v = getattr(rec, name, None)
        if v is not None:
            d[name] = round(v, 3) if isinstance(v, float) else v
    return d


def open_view(
    listen: str | None, recordings: list[Any], stack: ExitStack, title: str, quiet: bool = False
) -> ViewServer | None:
    """With --view (listen: its HOST:PORT), the live view of the first recording; None without."""
    if listen is None or not recordings:
        return None
    host, port = parse_listen(listen)
    rec = recordings[0]
    observer = EnvelopeObserver(rec.config.rate)
    try:
        server = ViewServer(
            observer,
            host,
            port,
            title=title,
            layout=lambda: rec.pipeline.layout,
            counters=lambda: recording_counters(rec),
        )
    except OSError as e:
        raise UsageError(f"--view {listen}: cannot listen on {host}:{port}: {e.strerror or e}") from None
    observer.follow(rec.pipeline)  # the recording's instants, not past its end (--seconds)
    tap = rec.receiver.taps.add(observer, name="view")
    rec.pipeline.gap_listeners.append(observer.on_gap)
    rec.pipeline.marker_listeners.append(observer.on_marker)
    url = server.start()
    _say(f"picodaq: live view on {url}" + (" (the first board)" if len(recordings) > 1 else ""))
    stack.callback(_close, server, rec, tap, quiet)
    return server


def _close(server: ViewServer, rec: Any, tap: Any, quiet: bool) -> None:
    server.stop()
    try:
        rec.receiver.taps.remove(tap)
    except ValueError:
        pass
    s = server.stats()
    o = s["observer"]
    if quiet and not (o["instants_dropped"] or s["columns_dropped"]):
        return
    _say(
        f"view     {o['instants']:,} instants in {o['columns_made']:,} columns of {o['bucket']} to "
        f"{len(s['pages'])} page(s); {o['instants_dropped']:,} instants skipped (the view behind), "
        f"{s['columns_dropped']:,} columns dropped for pages too slow"
    )


def _say(text: str) -> None:
    try:
        print(text, file=sys.stderr, flush=True)
    except BrokenPipeError:
        pass
