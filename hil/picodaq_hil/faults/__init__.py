"""A faulty link: bit flips, dropped and duplicated bytes, stalls and disconnects
between a board's port and the host, at seeded rates, with a log of every fault.

Two layers, as in the rest of picodaq:

- `FaultInjector` (injector.py) is sans-I/O. It turns the board's byte stream into the
  stream the host should see, plus `Stall` and `Disconnect` events. Where a
  fault happens depends only on the seed and on the offset in the board's
  stream (never on timing or on how the stream was chunked), so the same seed
  over the same bytes gives the same output, byte for byte. Every fault is
  recorded as a `Fault` in upstream offsets, so a test can tell exactly which
  frames reached the host intact.
- `FaultyLinkProxy` (proxy.py) is the I/O: a thread that opens the board's port, makes a
  new pty for the host (reachable under a stable symlink, like the emulator's
  port), relays host -> board bytes untouched and board -> host bytes through
  the injector. It writes everything the board sent to a capture file. A
  disconnect makes the host's port vanish (the host's reads fail) and
  reappear under the same path; while no host has the port open, what the
  board sends is discarded, as USB CDC does, and logged as `offline`.

    python -m picodaq_hil.faults proxy --upstream /dev/ttyACM0 --link /tmp/faulty --spec bitflip=1e-5 --seed 7
    python -m picodaq_hil.faults replay board.tlv --spec bitflip=1e-5,drop=1e-5 --seed 7 --out host.tlv

Faults apply to what the board sends; commands from the host pass unchanged.
"""

from .injector import Action, Disconnect, Fault, FaultInjector, Piece, Stall, apply_offline
from .proxy import FaultyLinkProxy, ProxyCounters
from .spec import KINDS, FaultSpec, fault_seed

__all__ = [
    "KINDS",
    "Action",
    "Disconnect",
    "Fault",
    "FaultInjector",
    "FaultSpec",
    "FaultyLinkProxy",
    "Piece",
    "ProxyCounters",
    "Stall",
    "apply_offline",
    "fault_seed",
]
