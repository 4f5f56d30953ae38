"""picodaq_hil: the hardware-in-the-loop test tooling (depends on picodaq, never the reverse).

boards/     selection (PICODAQ_PORT, else one by USB id, else an emulated board),
            leases (a lock file per board), flashing (ensure_firmware: only what
            differs), board (Board: connect, soft/hard reset, unplug, reconnect,
            faulty link), pool (BoardPool), devicelog (per-test device logs)
stream      StreamSession / StreamResult: picodaq's session loop, every block
            checked, every loss counted
faults/     spec (FaultSpec, seeds), injector (sans-I/O), proxy (the relay),
            python -m picodaq_hil.faults (proxy, replay)
oracle/     capture (a strict frame scanner), accounting (HilReceiver, RampCheck,
            audit_link), streams and recordings (the checks the keywords use)
pytest_plugin, robotlib/ (the Robot keywords), report (the board summary)
"""
