"""MicroPython that runs ON the board while it is flashed (not imported on the host).

`picodaq.flash.flasher` sends each file here through the raw REPL as it is
(`device_code()`), then calls its functions with their arguments written as
Python literals. The files are linted like the rest of picodaq and compiled
with mpy-cross for armv6m in the tests, so a mistake shows before a board
sees it.
"""
