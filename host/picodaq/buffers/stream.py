"""ByteStream: the consumer side of a ByteRing as an asyncio stream of memoryviews (`ByteRing.into_stream`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from .ring_errors import SendersDisconnected

if TYPE_CHECKING:
    from .ring import ByteRing


def _exported(buf: bytearray) -> bool:
    """True while a memoryview of buf is alive (CPython refuses to resize an exported bytearray)."""
    try:
        buf.append(0)
    except BufferError:
        return True
    del buf[-1]
    return False


class ByteStream:
    """The consumer side of a ring as an asyncio stream of memoryviews.

    Each chunk is a view of one of `pool_size` pooled buffers holding a copy
    of the ring's bytes, so the ring's space is freed at once and several
    chunks can be alive together. A buffer is reused only when no view of it
    is alive any more; if every pooled buffer is still held, a fresh one is
    allocated (counted in `fallbacks`) rather than overwrite a live chunk.
    Iterating yields whatever is ready, up to chunk_size bytes; `chunks(n)`
    yields exactly n bytes at a time and `ready_chunks(n)` up to n.
    The stream ends when the producer closes and every byte has been read.
    """

    def __init__(self, ring: ByteRing, pool_size: int, chunk_size: int) -> None:
        if pool_size < 1 or chunk_size < 1:
            raise ValueError("pool_size and chunk_size must be at least 1")
        self.ring = ring
        self.chunk_size = chunk_size
        self._buffers = [bytearray(chunk_size) for _ in range(pool_size)]
        self._next = 0
        self.fallbacks = 0  # chunks that needed a fresh buffer: all pooled ones were still held

    def _buffer(self) -> bytearray:
        bufs = self._buffers
        for i in range(len(bufs)):
            k = (self._next + i) % len(bufs)
            if not _exported(bufs[k]):
                self._next = k + 1
                return bufs[k]
        self.fallbacks += 1
        return bytearray(self.chunk_size)

    async def _read(self, lo: int, hi: int) -> memoryview:
        """At least lo bytes (fewer only at the end of the stream), at most hi."""
        ring = self.ring
        try:
            await ring.wait_readable_async(lo)
        except SendersDisconnected:
            raise StopAsyncIteration from None
        buf = self._buffer()  # only once there is something to put in it
        view = memoryview(buf)
        try:
            got = ring.pop_batch_into(view[:hi])
            while got < lo:
                try:
                    await ring.wait_readable_async(lo - got)
                except SendersDisconnected:
                    break
                got += ring.pop_batch_into(view[got:hi])
            return view[:got]
        finally:
            view.release()

    def __aiter__(self) -> ByteStream:
        return self

    async def __anext__(self) -> memoryview:
        return await self._read(1, self.chunk_size)

    def _check(self, n: int) -> None:
        if not 1 <= n <= self.chunk_size:
            raise ValueError(f"chunk length must be 1..{self.chunk_size} (the stream's chunk_size)")

    async def chunks(self, n: int) -> AsyncIterator[memoryview]:
        """Chunks of exactly n bytes; the last may be shorter when the stream ends."""
        self._check(n)
        while True:
            try:
                yield await self._read(n, n)
            except StopAsyncIteration:
                return

    async def ready_chunks(self, n: int) -> AsyncIterator[memoryview]:
        """Whatever is ready, at most n bytes per chunk, waiting only for the first byte."""
        self._check(n)
        while True:
            try:
                yield await self._read(1, n)
            except StopAsyncIteration:
                return
