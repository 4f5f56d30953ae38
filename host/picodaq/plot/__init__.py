"""`picodaq plot`: any recording picodaq writes, drawn.

- envelope: min/max per column of the grid (shared with the live view, picodaq.view)

matplotlib is imported only where a figure is drawn, so reading a recording stays light.
"""
