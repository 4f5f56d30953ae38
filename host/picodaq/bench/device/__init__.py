"""MicroPython scripts that `picodaq bench --only rp2040` runs in the emulated Pico's raw REPL (not CPython modules)."""
