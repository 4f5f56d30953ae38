"""pytest plugin: HIL fixtures (see picodaq_hil.boards)."""
