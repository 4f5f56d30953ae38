"""picodaq_hil: the emulated board and the hardware-in-the-loop test tooling.

selection   which board: PICODAQ_PORT, else one by USB id, else the emulator
leases      a lock file per board, so parallel workers take turns
flashing    ensure_firmware(): write only the files whose hashes differ
board       Board: lease, flash, connect, soft/hard reset, unplug, reconnect, faulty link
stream      StreamSession / StreamResult: every block checked, every loss counted
faults      FaultInjector (seeded, sans-I/O) and FaultyLinkProxy (the relay)
accounting  HilReceiver, RampCheck, audit_link(): the exact-accounting oracle
capture     a strict frame scanner and readable accounts of captures
devicelog   per-test, per-board device logs
emulator    the emulated board (MicroPython's unix port behind a pty)
pytest_plugin, robotlib, report   the pytest fixtures, the Robot keywords, the board summary
"""
