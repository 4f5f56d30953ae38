"""HostClock: device ticks to host monotonic time, by a linear fit.

The device stamps each SAMPLES block with `time.ticks_us()`, which wraps at
TICKS_PERIOD (2**30 µs on MicroPython, about 17.9 minutes). `unwrap` turns
those stamps into one increasing count; a backwards jump means the device
restarted its clock (a reboot), and the fit starts again.

`observe(device_us, host_s)` records that the block ending at device time
device_us had arrived by host time host_s. Arrival is always late by the
link's delay, which jitters (USB frames, scheduling, the reader thread), so:
observations are grouped in buckets of `bucket_us` device time and only the
least-delayed one of each is kept; a least-squares line through the last
`window` buckets gives the rate (the device's crystal against the host's),
and the line is then lowered onto the least-delayed point of the window, so it
tracks the earliest possible arrival. `host_time(device_us)` reads the line:
timestamps as regular as the device's clock, on the host's time base.
"""

from __future__ import annotations

import numpy as np

from .. import contracts as C

_NOMINAL = 1e-6  # host seconds per device microsecond
_NAN = float("nan")


class HostClock:
    def __init__(
        self, period: int = C.TICKS_PERIOD, window: int = 256, bucket_us: int = 100_000, min_span_us: int = 2_000_000
    ) -> None:
        if period <= 0 or period & (period - 1):
            raise ValueError("the ticks period must be a power of two")
        self.period = period
        self._mask = period - 1
        self._half = period >> 1
        self.window = window
        self.bucket_us = bucket_us
        self.min_span_us = min_span_us  # below this span the nominal rate beats a fitted one
        self._x = np.zeros(window)
        self._y = np.zeros(window)
        self._dx = np.empty(window)  # work arrays of _fit: it makes no array of its own
        self._dy = np.empty(window)
        self._w = np.empty(window)
        self.ref_raw: int | None = None  # the last stamp unwrapped, as sent ...
        self.ref_dev = 0  # ... and unwrapped: blocks unwrap lazily against this pair
        self.restarts = 0  # backwards jumps of the device clock seen
        self.reset()

    def reset(self) -> None:
        """Forget the fit (the device's clock restarted)."""
        self._x0: int | None = None
        self._y0 = 0.0
        self._n = 0  # buckets in the window
        self._i = 0  # next slot
        self._bucket_start = 0.0
        self._bx = 0.0
        self._by = 0.0
        self._bd = 0.0
        self._open = False
        self._closed = 0  # buckets closed since the last fit
        self.slope = _NOMINAL
        self.offset = 0.0

    @property
    def ready(self) -> bool:
        return self._x0 is not None

    def restart(self) -> None:
        """The device restarted its clock (it booted): forget the fit and the unwrapping."""
        self.reset()
        self.ref_raw = None

    def unwrap(self, ticks: int) -> int:
        """A device tick stamp (wrapping at the period) as an increasing microsecond count.

        Stamps must come in order, at least every half period (about 9 minutes)."""
        last = self.ref_raw
        if last is None:
            self.ref_dev = ticks
        else:
            d = (ticks - last) & self._mask
            if d < self._half:
                self.ref_dev += d
            else:  # backwards: the device's clock restarted
                self.restarts += 1
                self.reset()
                self.ref_dev = ticks
        self.ref_raw = ticks
        return self.ref_dev

    def unwrap_near(self, ticks: int, ref_raw: int, ref_dev: int) -> int:
        """Unwrap ticks against an earlier (ref_raw, ref_dev) pair within half a period of it."""
        half = self._half
        return ref_dev + ((ticks - ref_raw + half) & self._mask) - half

    def observe(self, device_us: int, host_s: float) -> None:
        """The data up to device_us (unwrapped) had arrived by host_s."""
        if self._x0 is None:
            self._x0 = device_us
            self._y0 = host_s
        x = float(device_us - self._x0)
        y = host_s - self._y0
        d = y - _NOMINAL * x  # the delay, up to a constant: smaller is better
        if self._open and x - self._bucket_start < self.bucket_us:
            if d < self._bd:
                self._bx, self._by, self._bd = x, y, d
                if self._n == 0:
                    self._fit()
            return
        if self._open:  # close the bucket: its least-delayed point joins the window
            i = self._i
            self._x[i] = self._bx
            self._y[i] = self._by
            self._i = i + 1 if i + 1 < self.window else 0
            if self._n < self.window:
                self._n += 1
            self._closed += 1
        self._open = True
        self._bucket_start = x
        self._bx, self._by, self._bd = x, y, d
        if self._n < 16 or self._closed >= 4:  # the rate changes slowly: refit every 4th bucket
            self._fit()

    def _fit(self) -> None:
        # numpy over at most `window` points into work arrays made once: a fit costs a few
        # scalars, not a float object per point and operation (it runs once per closed
        # bucket or so: a few times a second live, once per read in a replay)
        self._closed = 0
        n = self._n
        bx, by = self._bx, self._by  # the open bucket's point; coordinates relative to it, for precision
        slope = _NOMINAL
        low = 0.0  # the open bucket's own residual
        if n:
            dx, dy, w = self._dx[:n], self._dy[:n], self._w[:n]
            np.subtract(self._x[:n], bx, dx)
            np.subtract(self._y[:n], by, dy)
            m = n + 1  # the open bucket's point sits at (0, 0)
            if max(float(dx.max()), 0.0) - min(float(dx.min()), 0.0) >= self.min_span_us:
                sx = float(dx.sum())
                sy = float(dy.sum())
                slope = (float(dx.dot(dy)) - sx * sy / m) / (float(dx.dot(dx)) - sx * sx / m)
            np.multiply(dx, slope, w)
            np.subtract(dy, w, w)
            low = min(float(w.min()), 0.0)
        self.slope = slope
        self.offset = by - slope * bx + low

    def host_time(self, device_us: int) -> float:
        """Host monotonic seconds at device time device_us (unwrapped); NaN before any observation."""
        if self._x0 is None:
            return _NAN
        return self._y0 + self.offset + self.slope * (device_us - self._x0)
