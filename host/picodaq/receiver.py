"""Receiver: the sans-I/O core that turns link bytes into routed messages.

Bytes go in with `receive(data)`; frames come out of the FrameDecoder and are
routed by type: SAMPLES blocks to the registered block handlers, ACKs, HELLO
and STATUS kept as the latest state, MARKER and LOG to their handlers. No
ports, no threads: the Link drives it, and replay feeds it from a file.
"""
from __future__ import annotations

from collections import deque
from typing import Callable

from . import contracts as C
from .blocks import SamplesBlock, decode_block
from .decoder import DecoderStats, FrameDecoder
from .frames import Frame
from .messages import Ack, Hello, Log, Marker, Status

BlockHandler = Callable[[SamplesBlock], None]


class Receiver:
    def __init__(self) -> None:
        self.decoder = FrameDecoder()
        self.acks: dict[int, Ack] = {}
        self.hello: Hello | None = None
        self.hellos = 0  # HELLO frames seen: a new one means the board (re)booted
        self.status: Status | None = None
        self.statuses = 0
        self.logs: deque[Log] = deque(maxlen=256)
        self.log_count = 0
        self.markers: list[Marker] = []
        self.block_handlers: list[BlockHandler] = []
        self.marker_handlers: list[Callable[[Marker], None]] = []
        self.log_handlers: list[Callable[[Log], None]] = []
        self.hello_handlers: list[Callable[[Hello], None]] = []

    @property
    def stats(self) -> DecoderStats:
        return self.decoder.stats

    def receive(self, data: bytes | bytearray | memoryview) -> int:
        """Decode and route everything data completes; returns frames routed."""
        self.decoder.feed(data)
        n = 0
        for frame in self.decoder:
            self.route(frame)
            n += 1
        return n

    def finish(self) -> int:
        """End of input: route whatever the remaining bytes still hold."""
        return self.receive(b"")

    def route(self, frame: Frame) -> None:
        t = frame.type
        if t == C.MSG_SAMPLES:
            block = decode_block(frame.payload)
            for h in self.block_handlers:
                h(block)
        elif t == C.MSG_ACK:
            ack = Ack.parse(frame.payload)
            self.acks[ack.cmd_id] = ack
        elif t == C.MSG_STATUS:
            self.status = Status.parse(frame.payload)
            self.statuses += 1
        elif t == C.MSG_HELLO:
            self.hello = Hello.parse(frame.payload)
            self.hellos += 1
            for h in self.hello_handlers:
                h(self.hello)
        elif t == C.MSG_MARKER:
            m = Marker.parse(frame.payload)
            self.markers.append(m)
            for h in self.marker_handlers:
                h(m)
        elif t == C.MSG_LOG:
            log = Log.parse(frame.payload)
            self.logs.append(log)
            self.log_count += 1
            for h in self.log_handlers:
                h(log)
