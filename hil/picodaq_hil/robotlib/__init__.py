"""Robot Framework keyword library for the picodaq HIL suite: the keyword layer only.

    Library    picodaq_hil.robotlib.PicodaqLibrary

Every keyword delegates: boards to boards.Board and BoardPool, streams to
stream.StreamSession, faulty links to faults, checks to the oracles. The
keywords are grouped by area (library.py: boards, tests and device logs;
streams.py; faults.py) over one base (base.py: state, and `_failing`, which
turns a library error into a test failure with the board's recent output
logged). `PicodaqLibrary`'s docstring is the Libdoc manual.
"""

from .library import PicodaqLibrary, __version__

__all__ = ["PicodaqLibrary", "__version__"]
