"""ViewServer: one page and a stream of server-sent events on 127.0.0.1, fed from an EnvelopeObserver.

Threads, and who may wait for whom:

- the recording's thread runs the observer (observer.py) and never waits for anything here;
- the publisher thread, ten times a second, drains the observer's finished columns and its gaps
  and markers, keeps the last window of them (a page that opens late sees what it missed), encodes
  one message and offers it to every page. It never writes to a socket either: it appends to each
  page's queue, and when a page's queue is full the columns are dropped for that page and counted
  (`dropped` per page, `columns_dropped` in all);
- each page's own handler thread writes its queue to its socket. A slow or stalled browser blocks
  only that thread (its socket's send buffer is kept small, so a stall shows within a second); a
  closed page ends it.

Routes: `/` the page, `/view.js` its script, `/events` the event stream (text/event-stream: `meta`,
`cols`, `gap`, `marker`, `stats`, `end`), `/stats.json` the counters.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from .observer import EnvelopeObserver

PAGE_QUEUE = 20  # messages a page may be behind before its columns are dropped (2 s of columns)
TICK = 0.1
STATS_EVERY = 0.5
SEND_BUFFER = 32 * 1024
_STATIC = {"/": ("index.html", "text/html; charset=utf-8"), "/view.js": ("view.js", "text/javascript; charset=utf-8")}


class Page:
    """One connected page: its queue of encoded messages and its counters."""

    def __init__(self, number: int, sock: socket.socket) -> None:
        self.number = number
        self.sock = sock
        self.queue: deque[tuple[bytes, int]] = deque()  # (message, columns in it)
        self.cond = threading.Condition()
        self.sent = 0  # columns written to the socket
        self.dropped = 0  # columns skipped because the page was behind
        self.queued_columns = 0
        self.writing = 0  # columns taken from the queue, being written (a stalled page: stuck here)
        self.offered = 0  # columns published while this page was connected
        self.closed = False

    def offer(self, message: bytes, columns: int = 0, droppable: bool = False) -> None:
        with self.cond:
            if self.closed:
                return
            self.offered += columns
            if droppable and len(self.queue) >= PAGE_QUEUE:
                self.dropped += columns
                return
            self.queue.append((message, columns))
            self.queued_columns += columns
            self.cond.notify()

    def take(self, timeout: float) -> tuple[bytes, int] | None:
        with self.cond:
            if not self.queue and not self.closed:
                self.cond.wait(timeout)
            if not self.queue:
                return None
            msg, cols = self.queue.popleft()
            self.queued_columns -= cols
            self.writing = cols
            return msg, cols

    def written(self) -> None:
        with self.cond:
            self.sent += self.writing
            self.writing = 0

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # unblocks a write stuck on a page that stopped reading
        except OSError:
            pass

    def stats(self) -> dict[str, int | bool]:
        """offered = sent + dropped + queued + writing, always (taken under the page's lock)."""
        with self.cond:
            return {
                "page": self.number,
                "columns_offered": self.offered,
                "columns_sent": self.sent,
                "columns_dropped": self.dropped,
                "columns_queued": self.queued_columns,
                "columns_writing": self.writing,
                "connected": not self.closed,
            }


def event(kind: str, data: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class ViewServer:
    def __init__(
        self,
        observer: EnvelopeObserver,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        title: str = "picodaq",
        layout: Callable[[], Any] | None = None,
        counters: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        """layout(): the recording's Layout once known (labels, rate, scale), else None;
        counters(): the link's counters for the bar above the plot."""
        self.observer = observer
        self.title = title
        self._layout = layout
        self._counters = counters
        self.pages: list[Page] = []
        self._lock = threading.Lock()
        self._pub_lock = threading.Lock()
        self._stop = threading.Event()
        self._history: deque[tuple[list[int], list[list[int]], list[list[int]]]] = deque()
        self._gaps: list[dict[str, Any]] = []
        self._markers: list[dict[str, Any]] = []
        self._meta: dict[str, Any] | None = None
        self.columns_published = 0
        self._rate_mark: tuple[float, int] | None = None
        self._rate = 0.0
        self.httpd = ThreadingHTTPServer((host, port), self._handler())
        self.httpd.daemon_threads = True
        self._threads = [
            threading.Thread(
                target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True, name="view-http"
            ),
            threading.Thread(target=self._publish_loop, daemon=True, name="view-publisher"),
        ]

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> str:
        for t in self._threads:
            t.start()
        return self.url

    def stop(self) -> None:
        """Say `end` to every page, then close them and the server (the recording is over)."""
        if self._stop.is_set():
            return
        self._publish()  # the last columns, gaps and markers
        self._stop.set()
        with self._lock:
            pages = list(self.pages)
        for p in pages:
            p.offer(event("end", {"stats": self._stats_for(p)}))
        deadline = time.monotonic() + 1.0
        for p in pages:  # a page that reads gets its last messages; one that does not is cut off
            while p.queue and time.monotonic() < deadline:
                time.sleep(0.02)
            p.close()
        self.httpd.shutdown()
        self.httpd.server_close()
        for t in self._threads:
            t.join(5)

    # -- publishing -------------------------------------------------------------------------

    def _publish_loop(self) -> None:
        next_stats = 0.0
        while not self._stop.wait(TICK):
            self._publish()
            now = time.monotonic()
            if now >= next_stats:
                next_stats = now + STATS_EVERY
                self._send_stats()

    def _publish(self) -> None:
        with self._pub_lock:  # a page connecting meanwhile gets its welcome before or after, never amid
            self._publish_locked()

    def _publish_locked(self) -> None:
        obs = self.observer
        if self._meta is None or self._meta["provisional"]:
            meta = self._make_meta()
            if meta != self._meta:
                self._meta = meta
                self._broadcast(event("meta", meta))
        while obs.events:
            kind, ev = obs.events.popleft()
            if kind == "gap":
                d = {"pos": ev.pos, "span": ev.span, "label": ev.describe(), "reason": ev.reason}
                self._gaps.append(d)
            else:
                d = {"pos": ev.pos, "code": ev.code}
                self._markers.append(d)
            self._broadcast(event(kind, d))
        cols, lo, hi = obs.drain()
        if not len(cols):
            return
        msg = {"cols": cols.tolist(), "lo": lo.T.tolist(), "hi": hi.T.tolist()}
        self.columns_published += len(cols)
        self._keep(msg["cols"], msg["lo"], msg["hi"])
        self._broadcast(event("cols", msg), columns=len(cols), droppable=True)

    def _keep(self, cols: list[int], lo: list[list[int]], hi: list[list[int]]) -> None:
        """The last window's columns, for a page that connects later."""
        obs = self.observer
        keep = int(obs.window_s * obs.rate / obs.bucket) + 1
        self._history.append((cols, lo, hi))
        while self._history and self._history[0][0][-1] < cols[-1] - keep:
            self._history.popleft()

    def _make_meta(self) -> dict[str, Any]:
        obs = self.observer
        lay = self._layout() if self._layout else None
        nch = lay.n_channels if lay is not None else obs.n_channels
        meta: dict[str, Any] = {
            "title": self.title,
            "rate": obs.rate,
            "bucket": obs.bucket,
            "window_s": obs.window_s,
            "labels": list(lay.labels) if lay is not None else [f"ch{i}" for i in range(nch)],
            "unit": lay.scale.dimension if lay is not None else "count",
            "per_count": lay.scale.per_count if lay is not None else 1.0,
            "waiting": not nch,  # no block yet
            "provisional": not nch or (self._layout is not None and lay is None),  # sent again once known
        }
        return meta

    def _broadcast(self, message: bytes, columns: int = 0, droppable: bool = False) -> None:
        with self._lock:
            pages = list(self.pages)
        for p in pages:
            p.offer(message, columns, droppable)

    def _send_stats(self) -> None:
        with self._lock:
            pages = list(self.pages)
        for p in pages:
            p.offer(event("stats", self._stats_for(p)))

    def _link_counters(self) -> dict[str, Any]:
        if self._counters is None:
            return {}
        try:
            c = dict(self._counters())
        except Exception as e:  # noqa: BLE001 -- the bar says so; the view goes on
            return {"error": f"{type(e).__name__}: {e}"}
        now = time.monotonic()
        samples = c.get("samples")
        if isinstance(samples, int):
            if self._rate_mark is not None and now - self._rate_mark[0] >= 0.4:
                self._rate = (samples - self._rate_mark[1]) / (now - self._rate_mark[0])
                self._rate_mark = (now, samples)
            elif self._rate_mark is None:
                self._rate_mark = (now, samples)
            c["rate"] = round(self._rate, 1)
        return c

    def _stats_for(self, page: Page | None) -> dict[str, Any]:
        d = {"link": self._link_counters(), "observer": self.observer.stats()}
        if page is not None:
            d["page"] = page.stats()
        return d

    def stats(self) -> dict[str, Any]:
        """Every counter of the view: the observer's, and each page's."""
        with self._lock:
            pages = [p.stats() for p in self.pages]
        return {
            "url": self.url,
            "observer": self.observer.stats(),
            "columns_published": self.columns_published,
            "columns_dropped": sum(int(p["columns_dropped"]) for p in pages),
            "pages": pages,
        }

    # -- serving ----------------------------------------------------------------------------

    def _welcome(self, page: Page) -> None:
        """What a page that just connected needs: the layout, the gaps and markers so far, the last window."""
        if self._meta is not None:
            page.offer(event("meta", self._meta))
        for g in list(self._gaps):
            page.offer(event("gap", g))
        for m in list(self._markers):
            page.offer(event("marker", m))
        for cols, lo, hi in list(self._history):
            page.offer(event("cols", {"cols": cols, "lo": lo, "hi": hi}), len(cols))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- quiet: the recording's screen is not a web log
                pass

            def do_GET(self) -> None:  # noqa: N802 -- http.server's naming
                path = self.path.split("?", 1)[0]
                if path in _STATIC:
                    name, ctype = _STATIC[path]
                    self._send(200, ctype, resources.files(__package__).joinpath("static", name).read_bytes())
                elif path == "/stats.json":
                    self._send(200, "application/json", json.dumps(server.stats(), indent=1).encode())
                elif path == "/events":
                    self._events()
                else:
                    self._send(404, "text/plain; charset=utf-8", b"not found\n")

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def _events(self) -> None:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                with server._pub_lock:  # one page at a time: numbers follow the order pages joined in
                    page = Page(len(server.pages) + 1, self.connection)
                    server._welcome(page)
                    with server._lock:
                        server.pages.append(page)
                try:
                    self.wfile.write(b"retry: 1000\n\n")
                    self.wfile.flush()
                    while not page.closed:
                        item = page.take(1.0)
                        if item is None:
                            if server._stop.is_set():
                                break
                            self.wfile.write(b": keep-alive\n\n")  # finds a closed page within a second
                        else:
                            self.wfile.write(item[0])
                            page.written()
                        self.wfile.flush()
                except OSError:  # the page closed, or stopped reading and was cut off
                    pass
                finally:
                    page.close()

        return Handler
