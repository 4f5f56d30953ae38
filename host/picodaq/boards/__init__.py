"""The emulated boards: product code, since `picodaq emulate` and the no-board fallback use them.

rp2040             the real rp2 port (MicroPython RPI_PICO uf2) on an emulated RP2040 (rp2040js):
                   Rp2040Board, and `python -m picodaq.boards.rp2040`
rp2040_supervisor  its supervisor: the Node runner (rp2040js/) behind a pty
node               finding Node.js and installing rp2040js for it
"""
