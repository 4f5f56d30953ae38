# picodaq firmware entry: build the app from this board's HAL and run it.
# Returning (the escape while idle: a pause, then CR, Ctrl-C, CR; see
# picodaq_fw/app.py) hands over to the REPL.
#
# Keyboard interrupts are off from the first line: a host may send its first
# command while the modules below still load (about a second on an RP2040), and
# command frames hold 0x03 (CONFIGURE's opcode, any CRC byte), which would
# otherwise raise KeyboardInterrupt here and leave the board at the REPL. A
# host still reaches the REPL: the app reads its escape itself while idle.
#
# On rp2 the large buffers and the sample ring are taken before anything else
# loads, while the heap is one free block (picodaq_fw/budget.py).
import micropython

micropython.kbd_intr(-1)
try:
    import sys
    from picodaq_fw import budget

    ring = None
    if sys.platform == "rp2":
        budget.early()
        ring = budget.take(budget.RP2_RESERVE)
        from picodaq_fw.hal_rp2 import Hal
    else:
        from picodaq_fw.hal_unix import Hal
    from picodaq_fw.app import App

    App(Hal(), ring).run()
finally:
    # the REPL (and the tools that use it) get the heap back
    ring = None
    budget.release()
    micropython.kbd_intr(3)
