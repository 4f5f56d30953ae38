# picodaq firmware entry: build the app from this board's HAL and run it.
# Returning (the escape while idle: a pause, then CR, Ctrl-C, CR; see
# picodaq_fw/app.py) hands over to the REPL.
import sys

if sys.platform == "rp2":
    from picodaq_fw.hal_rp2 import Hal
else:
    from picodaq_fw.hal_unix import Hal
from picodaq_fw.app import App

App(Hal()).run()
