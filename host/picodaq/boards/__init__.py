"""The emulated boards: product code, since `picodaq emulate` and the no-board fallback use them.

    rp2040   the real rp2 port (MicroPython RPI_PICO uf2) on an emulated RP2040 (rp2040js)
    node     finding Node.js and installing rp2040js for it
"""
