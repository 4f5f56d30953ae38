# picodaq firmware: sample rings, framer, sources and the command loop.
# Runs unchanged on rp2 and on the MicroPython unix port; the board's HAL
# (hal_rp2 / hal_unix) is the only part that differs.
VERSION = (0, 1, 0)
