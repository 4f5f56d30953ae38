# Firmware test driver, booted on the unix port instead of main.py.
# It runs the real App and HAL with test hooks chosen by environment:
#   FWTEST_CHECK_INTS=1    every int packed into a frame must stay below 2**30
#                          (rp2's small-int limit); the heap lock is off for this
#                          run because the checker itself takes *args
#   FWTEST_INJECT_AT=N     allocate inside the locked loop on its Nth pass
#   FWTEST_NEAR_LIMITS=1   start seq, sample index and uptime just below 2**32 / 2**30
import os
import picodaq_fw.app as A
import picodaq_fw.framer as F
from picodaq_fw.hal_unix import Hal

hal = Hal()
app = A.App(hal)

if os.getenv("FWTEST_CHECK_INTS") == "1":
    _real = F.pack_into

    def _checked(fmt, buf, off, *vals):
        for v in vals:
            if isinstance(v, int) and not (-(1 << 30) <= v < (1 << 30)):
                raise OverflowError("int >= 2**30 packed into a frame")
        _real(fmt, buf, off, *vals)

    class _NoLock:
        @staticmethod
        def heap_lock():
            pass

        @staticmethod
        def heap_unlock():
            pass

    F.pack_into = _checked
    A.micropython = _NoLock

if os.getenv("FWTEST_NEAR_LIMITS") == "1":
    # seq 16 frames short of 2**32, the sample index 1000 short of 2**30,
    # uptime just short of 2**30 ms: every wide field crosses its limit
    app.framer.seq[0] = 0xFFF0
    app.framer.seq[1] = 0xFFFF
    app.uptime[0] = 0xFF00
    app.uptime[1] = 0x3FFF
    _reset = app.ring.reset

    def _reset_near_limit():
        _reset()
        app.ring.counts[0] = 0xFC18  # 2**30 - 1000 as halves
        app.ring.counts[1] = 0x3FFF

    app.ring.reset = _reset_near_limit

inject_at = int(os.getenv("FWTEST_INJECT_AT") or "0")
if inject_at:
    _service = hal.service
    _passes = [0]

    def _counting_service(ring, src):
        _passes[0] += 1
        if _passes[0] == inject_at:
            app.inject_alloc = True
        return _service(ring, src)

    hal.service = _counting_service

app.run()
