# Firmware test driver, booted on the unix port instead of main.py.
# It runs the real App and HAL with test hooks chosen by environment:
#   FWTEST_CHECK_INTS=1    every int packed into a frame, added to a u32 counter,
#                          committed to the ring or passed to write() must stay
#                          below 2**30 (rp2's small-int limit); the heap lock is
#                          off for this run because the checkers take *args
#   FWTEST_NEAR_LIMITS=1   start seq, sample index and uptime just below 2**32 / 2**30
#   FWTEST_INJECT_AT=N     allocate inside the locked loop on its Nth pass
#   FWTEST_SAMPLER_FAULT_AT=N  on the Nth pass, flag the ring as an rp2 IRQ
#                          sampler does when it fails
#   FWTEST_SAMPLER_FAULT_EVERY=N  the same on every Nth pass: every stream faults
#   FWTEST_SHORT_WRITES=S  write() behaves like rp2's USB CDC under load: with
#                          seed S, it accepts a random 0..n bytes (0 as None)
#   FWTEST_STALL=A,B       write() makes no progress for B ms once A ms into the
#                          stream, as a CDC port the host holds open without
#                          reading; the sampler keeps running meanwhile
#   FWTEST_MARKER_EVERY=N  every Nth pass, record a marker as rp2's GPIO marker
#                          IRQ does (code 0xFF00 + running count)
#   FWTEST_RP2SIM=1        run hal_rp2 on simulated rp2 peripherals (rp2sim.py;
#                          FWTEST_RP2SIM_ADS=0: no ADS1299 answers)
import os

from time import ticks_ms, ticks_diff

env = os.getenv

if env("FWTEST_RP2SIM") == "1":
    import rp2sim

    rp2sim.install()
    from picodaq_fw.hal_rp2 import Hal
else:
    from picodaq_fw.hal_unix import Hal
import picodaq_fw.app as A
import picodaq_fw.framer as F
import picodaq_fw.counter32 as K
from picodaq_fw import markers as M
from picodaq_fw.ring import FAULT
from picodaq_fw.contracts import STATE_STREAMING

hal = Hal()
app = A.App(hal)
LIMIT = 1 << 30

if env("FWTEST_CHECK_INTS") == "1":

    def _checked(real, name):
        def f(*args):
            for v in args:
                if isinstance(v, int) and not (-LIMIT <= v < LIMIT):
                    raise OverflowError("%s got %d, beyond rp2's small ints" % (name, v))
            return real(*args)

        return f

    class _NoLock:
        @staticmethod
        def heap_lock():
            pass

        @staticmethod
        def heap_unlock():
            pass

    # rp2's ticks_us wraps at 2**30; the unix port's at 2**62
    import time
    import picodaq_fw.pacer as P

    P.ticks_us = lambda: time.ticks_us() & (LIMIT - 1)
    F.pack_into = _checked(F.pack_into, "pack_into")
    K.add = _checked(K.add, "counter32.add")
    hal.write = _checked(hal.write, "write")
    app.ring.commit = _checked(app.ring.commit, "ring.commit")
    app.ring.drop = _checked(app.ring.drop, "ring.drop")
    A.micropython = _NoLock

if env("FWTEST_NEAR_LIMITS") == "1":
    # seq 16 frames short of 2**32, the sample index 1000 short of 2**30,
    # uptime 16 ms short of 2**30 ms: every wide field crosses its limit
    app.framer.seq[0] = 0xFFF0
    app.framer.seq[1] = 0xFFFF
    app.uptime[0] = 0xFFF0
    app.uptime[1] = 0x3FFF
    _reset = app.ring.reset

    def _reset_near_limit():
        _reset()
        app.ring.counts[0] = 0xFC18  # 2**30 - 1000 as halves
        app.ring.counts[1] = 0x3FFF

    app.ring.reset = _reset_near_limit

short_seed = int(env("FWTEST_SHORT_WRITES") or "0")
stall = env("FWTEST_STALL")
if short_seed or stall:
    _write = hal.write
    _rng = [short_seed or 1]
    _t0 = [0, False]  # when the first stream started writing, whether it has
    stall_at, stall_ms = (int(x) for x in stall.split(",")) if stall else (0, 0)

    def _cdc_write(buf, off, n):
        if stall and app.state == STATE_STREAMING:
            if not _t0[1]:
                _t0[0] = ticks_ms()
                _t0[1] = True
            d = ticks_diff(ticks_ms(), _t0[0]) - stall_at
            if 0 <= d < stall_ms:
                return 0
        if short_seed:
            _rng[0] = (_rng[0] * 1103515245 + 12345) & 0x3FFFFFFF
            k = (_rng[0] >> 8) % (n + 1)
            if k == 0:
                return None
            n = k
        return _write(buf, off, n)

    hal.write = _cdc_write

inject_at = int(env("FWTEST_INJECT_AT") or "0")
fault_at = int(env("FWTEST_SAMPLER_FAULT_AT") or "0")
fault_every = int(env("FWTEST_SAMPLER_FAULT_EVERY") or "0")
marker_every = int(env("FWTEST_MARKER_EVERY") or "0")
sim = env("FWTEST_RP2SIM") == "1"
if inject_at or fault_at or fault_every or marker_every or sim:
    _service = hal.service
    _passes = [0]

    def _counting_service(ring, src):
        _passes[0] += 1
        p = _passes[0]
        if p == inject_at:
            _passes.append(bytearray(16))  # an allocation under the heap lock
        if p == fault_at or (fault_every and p % fault_every == 0):
            ring.st[FAULT] = 1
        if marker_every and p % marker_every == 0:
            if sim:
                rp2sim.pulse(hal.marker_pin.id)  # the real GPIO handler of hal_rp2
            else:
                M.push(app.markers.q, app.markers.hd, ring.counts, 0xFF00 + (p // marker_every & 0xFF))
        if sim:
            rp2sim.tick()  # the interrupts that came due meanwhile
        return _service(ring, src)

    hal.service = _counting_service

app.run()
