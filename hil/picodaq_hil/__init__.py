"""picodaq_hil: the emulated board, board selection and the HIL test tooling."""
