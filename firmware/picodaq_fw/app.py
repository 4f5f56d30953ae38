# App: the command loop and the streaming loop, shared by every board.
#
# Idle, it answers COMMAND frames. Streaming, it runs under
# micropython.heap_lock(): any allocation raises MemoryError, which turns into
# STATUS state=faulted, last_error=INTERNAL, a LOG line and a return to idle.
# A sampler that fails in IRQ context (rp2) flags the ring and ends the same way.
#
# Keyboard interrupts are off while the app runs (payload bytes may be 0x03, and
# so may any byte of a damaged command). The way back to the REPL is an escape
# no command stream holds by accident: while idle, after a pause of at least
# _PAUSE_MS with no input, the bytes CR, Ctrl-C (once or more), CR. That is
# what mpremote (and pyboard.py) send to enter the raw REPL, `\r\x03` then
# `\r\x01`: the app returns as it reads the second CR, leaving the Ctrl-A to
# the REPL, which answers with its banner. A human at a terminal types Enter,
# Ctrl-C, Enter after a pause. While streaming only a STOP ends the stream, so
# tools send STOP first (`picodaq flash` does). See firmware/README.md.
import gc
import micropython
from array import array
from micropython import const
from struct import unpack_from
from time import ticks_ms, ticks_diff
from . import crc32, counter32, VERSION
from .framer import Framer
from .markers import MarkerQueue
from .ring import SampleRing, FLOOR_MS, NEXT, DROPPED, FAULT, SPF, FILL, geometry, refusal as ring_refusal
from .contracts import (
    CONTRACT_HASH_LE, PROTOCOL_VERSION, MAGIC0, MAGIC1, OVERHEAD, MAX_PAYLOAD,
    MSG_COMMAND, COMMAND_MAX, CONFIGURE_ARGS, BYTES_PER_SAMPLE,
    OP_PING, OP_GET_INFO, OP_CONFIGURE, OP_START, OP_STOP, OP_GET_STATUS, OP_MARK,
    ST_OK, ST_UNKNOWN_OPCODE, ST_BAD_ARGUMENT, ST_BUSY, ST_UNSUPPORTED, ST_OVERRUN, ST_INTERNAL,
    STATE_IDLE, STATE_STREAMING, STATE_FAULTED, SRC_RAMP, SRC_ADS1299, FMT_INT16,
    LOG_WARNING, LOG_ERROR,
)

_CR = const(0x0D)
_CTRL_C = const(0x03)
_PAUSE_MS = const(50)  # the silence that must come before the escape to the REPL
_IDLE_MS = const(100)  # idle wait for input, once that silence has been seen
_FRAME = const(1)
_INTERRUPT = const(2)
_STATUS_MS = const(500)  # STATUS twice a second while streaming (the contract asks for >= 1/s)
_RX_BURST = const(64)  # command bytes read per streaming-loop pass
_SAMPLES_HEAD = const(16)
_CMD_ARGS = const(4)  # COMMAND payload bytes before the arguments
_LEN_END = const(6)  # header bytes up to the length field: the last one checked on arrival
_SOURCE_NAMES = ("ramp", "sine", "adc", "ads1299")  # by source kind (contracts.toml [sources])
# LOG texts sent while streaming: bytes constants, so framing them allocates nothing
_LOG_MARK_ARGS = b"MARK: the u16 code argument is missing"
_LOG_OVERRUN = b"ring overflowed: the host is not reading fast enough; new samples are dropped and counted"


class _SamplerFault(Exception):
    pass


# made once: raising a prebuilt exception under the heap lock allocates nothing
_SAMPLER_FAULT = _SamplerFault("the sampler failed in IRQ context")


class App:
    def __init__(self, hal, ring=None):
        # ring: the sample ring's bytearray, taken at boot (main.py); else made here
        self.hal = hal
        self.framer = Framer()
        self.ring = SampleRing(hal.RING_BYTES if ring is None else ring, hal.RING_SLOTS)
        self.rx = bytearray(OVERHEAD + COMMAND_MAX)  # the command being received
        self.rxn = 0
        self.need = 0
        # bytes of a rejected candidate to scan again, right-aligned: the next is rp[-rk]
        self.rp = bytearray(OVERHEAD + COMMAND_MAX)
        self.rk = 0
        # the escape to the REPL: a pause was seen (boot counts as one), and its progress
        self.hushed = True
        self.esc = 0
        self.one = bytearray(1)
        self.crc = crc32.new_state()
        self.uptime = array("H", bytes(4))
        self.snap = array("H", bytes(4))  # untorn copies of counters an IRQ updates
        self.markers = MarkerQueue()
        self.last_ms = ticks_ms()
        self.status_ms = self.last_ms
        self.state = STATE_IDLE
        self.last_error = ST_OK
        # the last ACK sent: a retried command (same cmd_id, its ACK lost) is answered
        # again instead of being run twice
        self.ack_id = -1
        self.ack_op = 0
        self.ack_status = ST_OK
        self.free_heap = 0  # while streaming: gc.mem_free() as the heap lock was taken
        # pending output: a frame is always finished before another starts
        self.pbuf = self.framer.cbuf
        self.poff = 0
        self.pleft = 0
        # configuration (CONFIGURE); a usable default so START alone works
        self.rate = 1000
        self.mask = 1
        self.nch = 1
        self.source_kind = SRC_RAMP
        self.fmt = FMT_INT16
        self.spf = 32
        self.period_ns = 1000000
        self.source = None

    # -- output --------------------------------------------------------------

    def _pump(self):
        # returns True when nothing is left pending
        while self.pleft:
            n = self.hal.write(self.pbuf, self.poff, self.pleft)
            if not n:
                return False
            self.poff += n
            self.pleft -= n
        return True

    def _send(self, buf, n):
        self._flush()
        self.pbuf = buf
        self.poff = 0
        self.pleft = n
        self._flush()

    def _flush(self):
        # a frame is never left half-sent; the sampler keeps running meanwhile
        while not self._pump():
            if self.state == STATE_STREAMING:
                self.hal.service(self.ring, self.source)
            self.hal.wait_output()

    # -- input ---------------------------------------------------------------

    def _feed(self, b):
        # PROTOCOL.md's receiving rules for the one type this side accepts: a
        # COMMAND of 4..COMMAND_MAX payload bytes. Each header field is checked
        # as it arrives; a rejected header or a CRC mismatch at offset p resumes
        # the hunt for magic at p + 1 over the bytes already held (_rescan), so
        # a command that starts inside a broken one is still found.
        n = self.rxn
        rx = self.rx
        if n == 0:
            if b == MAGIC0:
                rx[0] = b
                self.rxn = 1
            return 0
        rx[n] = b
        n += 1
        self.rxn = n
        if n > _LEN_END:
            if n < self.need:
                return 0
            c = self.crc
            crc32.reset(c)
            crc32.update(c, rx, 0, n - 4)
            if crc32.matches(c, rx, n - 4):
                self.rxn = 0
                return _FRAME
        elif n == 2:
            if b == MAGIC1:
                return 0
        elif n == 3:
            if b == PROTOCOL_VERSION:
                return 0
        elif n == 4:
            if b == MSG_COMMAND:
                return 0
        elif n == _LEN_END:
            length = rx[4] | b << 8
            if _CMD_ARGS <= length <= COMMAND_MAX:
                self.need = OVERHEAD + length
                return 0
        else:
            return 0
        self._rescan(n)
        return 0

    def _rescan(self, n):
        # the n bytes held are not a command: drop them up to the next magic byte
        # after the first, and queue the rest to be fed again before new input
        rx = self.rx
        self.rxn = 0
        i = 1
        while i < n and rx[i] != MAGIC0:
            i += 1
        m = n - i
        if m:
            rp = self.rp
            k = self.rk + m  # held + queued never exceed one frame: it fits
            self.rk = k
            for j in range(m):
                rp[j - k] = rx[i + j]

    def _read_input(self, limit):
        # feeds the bytes queued by _rescan, then at most limit bytes that are
        # already waiting; while idle, watches the new ones for the way to the REPL
        hal = self.hal
        one = self.one
        rp = self.rp
        idle = self.state != STATE_STREAMING
        while True:
            k = self.rk
            if k:
                b = rp[-k]
                self.rk = k - 1
            elif limit > 0 and hal.input_ready():
                hal.read_byte(one)
                limit -= 1
                b = one[0]
                if idle and self._escape(b):
                    return _INTERRUPT
            else:
                return 0
            if self._feed(b) == _FRAME:
                state = self.state
                self._command()
                if self.state != state:
                    return 0  # START or STOP: let the loop switch first

    def _escape(self, b):
        # the way to the REPL, for new bytes while idle: a pause of at least
        # _PAUSE_MS (self.hushed), then CR, Ctrl-C (once or more), CR. The
        # firmware returns as it reads that CR, so what follows (mpremote's
        # Ctrl-A) is the REPL's to read. Not entered while streaming.
        quiet = self.hushed
        self.hushed = False
        e = self.esc
        if b == _CR:
            if e == 2:
                return True
            self.esc = 1 if quiet else 0
        elif b == _CTRL_C and e:
            self.esc = 2
        else:
            self.esc = 0
        return False

    # -- commands ------------------------------------------------------------

    def _ack(self, cmd_id, op, status):
        self.ack_id = cmd_id
        self.ack_op = op
        self.ack_status = status
        self._send(self.framer.cbuf, self.framer.ack(cmd_id, op, status))

    def _log(self, level, text):
        # a str only while idle (building it allocates); bytes constants anywhere
        self._send(self.framer.cbuf, self.framer.log(level, text))

    def _marker(self, index, code):
        self._send(self.framer.cbuf, self.framer.marker(index, 0, code))

    def _command(self):
        rx = self.rx
        op = rx[10]
        cmd_id = rx[12] | rx[13] << 8
        nargs = (rx[4] | rx[5] << 8) - _CMD_ARGS
        streaming = self.state == STATE_STREAMING
        if cmd_id == self.ack_id and op == self.ack_op and (
                op == OP_START or op == OP_STOP or op == OP_CONFIGURE or op == OP_MARK):
            # the host retried because our ACK was lost: a second START would say
            # BUSY and a second MARK would mark twice, so only answer again
            self._ack(cmd_id, op, self.ack_status)
            return
        if op == OP_PING:
            self._ack(cmd_id, op, ST_OK)
        elif op == OP_GET_STATUS:
            self._ack(cmd_id, op, ST_OK)
            self._status()
        elif op == OP_MARK:
            if nargs < 2:
                self._ack(cmd_id, op, ST_BAD_ARGUMENT)
                self._log(LOG_WARNING, _LOG_MARK_ARGS)
                return
            self._ack(cmd_id, op, ST_OK)
            self.ring.read_counter(NEXT, self.snap, 0)
            self._marker(self.snap, rx[14] | rx[15] << 8)
        elif op == OP_STOP:
            self._ack(cmd_id, op, ST_OK)
            if streaming:
                self.state = STATE_IDLE
        elif streaming:
            # everything else needs the idle board (and may allocate); no tuple
            # here: building one under the heap lock would fault the stream
            busy = op == OP_GET_INFO or op == OP_CONFIGURE or op == OP_START
            self._ack(cmd_id, op, ST_BUSY if busy else ST_UNKNOWN_OPCODE)
        elif op == OP_GET_INFO:
            self._ack(cmd_id, op, ST_OK)
            self._hello()
        elif op == OP_CONFIGURE:
            st, why = self._configure()
            self._ack(cmd_id, op, st)
            if why:
                self._log(LOG_WARNING, why)
        elif op == OP_START:
            st, why = self._start()
            self._ack(cmd_id, op, st)
            if why:
                self._log(LOG_ERROR, why)
            if st == ST_OK:
                self.state = STATE_STREAMING
        else:
            self._ack(cmd_id, op, ST_UNKNOWN_OPCODE)

    def _configure(self):
        rx = self.rx
        if (rx[4] | rx[5] << 8) < _CMD_ARGS + 12:
            return ST_BAD_ARGUMENT, "CONFIGURE: arguments too short (12 bytes expected)"
        rate_lo, rate_hi, mask_lo, mask_hi, source, fmt, spf = unpack_from(CONFIGURE_ARGS, rx, 14)
        hal = self.hal
        if rate_hi >= 0x4000 or (rate_lo | rate_hi) == 0:
            return ST_BAD_ARGUMENT, "CONFIGURE: rate out of range"
        rate = rate_hi << 16 | rate_lo
        nch = 0
        for c in range(32):
            if (mask_hi if c >= 16 else mask_lo) >> (c & 15) & 1:
                if c >= hal.MAX_CHANNELS:
                    return ST_BAD_ARGUMENT, "CONFIGURE: channel %d not on this board" % c
                nch += 1
        if nch == 0:
            return ST_BAD_ARGUMENT, "CONFIGURE: no channel enabled"
        if fmt < 1 or fmt >= len(BYTES_PER_SAMPLE):
            return ST_BAD_ARGUMENT, "CONFIGURE: unknown sample format %d" % fmt
        if source > SRC_ADS1299:
            return ST_BAD_ARGUMENT, "CONFIGURE: unknown source %d" % source
        if source not in hal.SOURCES:
            why = hal.check(source, fmt, rate, mask_lo | mask_hi << 16)  # the HAL may know why
            return ST_UNSUPPORTED, "CONFIGURE: %s" % (why or "source %s is not on this board" % _SOURCE_NAMES[source])
        bps = BYTES_PER_SAMPLE[fmt]
        if spf < 1 or _SAMPLES_HEAD + nch * spf * bps > MAX_PAYLOAD:
            return ST_BAD_ARGUMENT, "CONFIGURE: %d samples per frame do not fit a frame" % spf
        if rate * nch > hal.MAX_RATE:
            return ST_BAD_ARGUMENT, "CONFIGURE: %d samples/s exceeds this board's %d" % (rate * nch, hal.MAX_RATE)
        why = hal.check(source, fmt, rate, mask_lo | mask_hi << 16)
        if why:
            return ST_UNSUPPORTED, "CONFIGURE: " + why
        why = ring_refusal(len(self.ring.buf), rate, nch, bps, spf, MAX_PAYLOAD - _SAMPLES_HEAD, self.ring.most)
        if why:
            return ST_BAD_ARGUMENT, why
        self.rate = rate
        self.mask = mask_lo | mask_hi << 16
        self.nch = nch
        self.source_kind = source
        self.fmt = fmt
        self.spf = spf
        self.period_ns = 1000000000 // rate
        return ST_OK, None

    def _start(self):
        try:
            self.source = self.hal.source(self.source_kind)
            ibytes = self.nch * BYTES_PER_SAMPLE[self.fmt]
            slots, ms = geometry(len(self.ring.buf), self.spf, ibytes, self.rate, self.ring.most)
            if slots < 2 or ms < FLOOR_MS:
                return ST_BAD_ARGUMENT, "START: configuration does not fit the ring"
            self.ring.configure(slots, self.spf, ibytes)
            self.markers.clear()
            self.source.start(self.nch, self.fmt, self.rate)
            self.last_error = ST_OK
            period = self.hal.start(self.ring, self.source, self.rate, self.mask, self.markers)
            self.period_ns = period or 1000000000 // self.rate
            return ST_OK, None
        except Exception as e:
            self.source = None
            try:
                self.hal.stop()
            except Exception:
                pass
            return ST_INTERNAL, "START failed: %r" % e

    def _hello(self):
        f = self.framer
        hal = self.hal
        sources = 0
        for k in hal.SOURCES:
            sources |= 1 << k
        self._send(f.cbuf, f.hello(VERSION, CONTRACT_HASH_LE, hal.board_id(), hal.PLATFORM,
                                   hal.MAX_CHANNELS, self.source_kind, hal.MAX_RATE, sources,
                                   len(self.ring.buf)))

    def _status(self, free_heap=-1):
        # free_heap: while streaming, the value taken as the lock was taken; when
        # a stream ends, the value right after unlocking (the two must agree)
        self._tick()
        r = self.ring
        self.status_ms = self.last_ms
        if free_heap < 0:
            free_heap = self.free_heap if self.state == STATE_STREAMING else gc.mem_free()
        r.read_counter(DROPPED, self.snap, 0)
        self._send(self.framer.cbuf, self.framer.status(
            self.uptime, self.snap, 0, r.high_water(), r.capacity(), free_heap,
            self.last_error, self.state))

    def _tick(self):
        now = ticks_ms()
        counter32.add(self.uptime, 0, ticks_diff(now, self.last_ms))
        self.last_ms = now

    # -- loops ---------------------------------------------------------------

    def _stream(self):
        hal = self.hal
        ring = self.ring
        st = ring.st
        counts = ring.counts
        src = self.source
        f = self.framer
        markers = self.markers
        snap = self.snap
        overrun = False
        fault = None
        gc.collect()
        self.free_heap = gc.mem_free()
        micropython.heap_lock()
        try:
            while self.state == STATE_STREAMING:
                busy = hal.service(ring, src)  # True: more is due than one call makes
                if self.pleft:
                    if not self._pump():
                        hal.wait_output()
                    continue
                # commands and STATUS first: a ring that always has a chunk
                # ready (host keeping up, unpaced source) must not starve them
                if self.rk or hal.input_ready():
                    self._read_input(_RX_BURST)
                    continue
                if st[FAULT]:
                    raise _SAMPLER_FAULT
                if not overrun and (counts[DROPPED] | counts[DROPPED + 1]):
                    overrun = True
                    self.last_error = ST_OVERRUN
                    self._log(LOG_WARNING, _LOG_OVERRUN)
                    continue
                if ticks_diff(ticks_ms(), self.status_ms) >= _STATUS_MS:
                    self._status()
                    continue
                if markers.pending():
                    code = markers.pop_into(snap)
                    self._marker(snap, code)
                    continue
                if ring.ready():
                    self.pbuf = f.sbuf
                    self.poff = 0
                    self.pleft = f.samples(ring, self.period_ns, self.nch, self.fmt)
                    continue
                if not busy:
                    # nothing to do until the chunk being filled is complete (or a
                    # command arrives, or STATUS is due): sleep that long, not 1 ms
                    ms = ((st[SPF] - st[FILL]) * 1000 + self.rate - 1) // self.rate
                    left = _STATUS_MS - ticks_diff(ticks_ms(), self.status_ms)
                    hal.idle(ms if ms < left else left if left > 0 else 1)
        except BaseException as e:  # MemoryError under the lock, a sampler fault, or a bug
            fault = e
        micropython.heap_unlock()
        free_after = gc.mem_free()  # before anything allocates again
        hal.stop()
        self.source = None
        self._flush()
        if fault is None:
            # STOP: markers and whole frames already sampled still go out, before the final STATUS
            while markers.pending():
                code = markers.pop_into(snap)
                self._marker(snap, code)
            while ring.ready():
                self._send(f.sbuf, f.samples(ring, self.period_ns, self.nch, self.fmt))
        if fault is not None:
            self.last_error = ST_INTERNAL
            self.state = STATE_FAULTED
            self._status(free_after)
            self._log(LOG_ERROR, "streaming stopped: %s %s" % (type(fault).__name__, fault))
            self.state = STATE_IDLE
        else:
            self._status(free_after)

    def run(self):
        hal = self.hal
        hal.begin()
        try:
            self._hello()
            while True:
                self._tick()
                if self.state == STATE_STREAMING:
                    self._stream()
                    self.esc = 0
                    self.hushed = False  # the pause before an escape counts from here
                    continue
                if not self.rk and not hal.wait_input(_IDLE_MS if self.hushed else _PAUSE_MS):
                    # this wait began after the last byte was read: no input for
                    # _PAUSE_MS, however late this process got to run
                    self.hushed = True
                    continue
                if self._read_input(_RX_BURST) == _INTERRUPT:
                    return  # main.py ends: the REPL reads what follows the escape
        finally:
            hal.end()
