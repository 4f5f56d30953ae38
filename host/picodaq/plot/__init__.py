"""`picodaq plot`: any recording picodaq writes, drawn.

- envelope: min/max per column of the grid (shared with the live view, picodaq.view)
- model: the Picture every reader returns (envelope in physical units, gaps, markers, in seconds)
- read_tlv (replayed through recording.pipeline), read_npy (memory-mapped, with its events list),
  read_bdf (records memory-mapped, annotations from their TAL bytes), read_csv (chunks of lines)
- load: the reader by what the file's bytes are; draw: matplotlib; command: `picodaq plot`

matplotlib is imported only where a figure is drawn, so reading a recording stays light.
"""
