"""Any recording picodaq writes, by what its bytes are (the suffix only breaks a tie)."""

from __future__ import annotations

from pathlib import Path

from .model import ChannelPick, Picture, PlotError, Window
from .read_bdf import read_bdf
from .read_csv import HEADER as CSV_HEADER
from .read_csv import read_csv
from .read_npy import read_npy
from .read_tlv import read_tlv

COLUMNS = 2000  # envelope columns across the window (up to twice as many when its length is unknown)
KINDS = ".tlv, .bdf, .npy (with its .events.csv) and .csv"


def kind_of(path: Path) -> str:
    """ "tlv", "bdf", "npy" or "csv"; a PlotError for anything else."""
    if path.is_dir():
        raise PlotError(f"{path}: is a directory, not a recording")
    if not path.is_file():
        raise PlotError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as e:
        raise PlotError(f"{path}: cannot read: {e.strerror or e}") from None
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith((b"\xffBIOSEMI", b"0       ")) and path.suffix.lower() in (".bdf", ".edf"):
        return "bdf"
    if head.startswith(CSV_HEADER.encode()):
        return "csv"
    if head.startswith(b"kind,row,t_s,"):
        raise PlotError(f"{path}: an events list; plot the .npy recording beside it")
    if path.suffix.lower() == ".tlv":
        return "tlv"
    raise PlotError(f"{path}: not a picodaq recording (picodaq plot reads {KINDS})")


def load(
    path: Path,
    channels: str | None = None,
    t_from: float | None = None,
    t_to: float | None = None,
    columns: int = COLUMNS,
) -> Picture:
    """The Picture of path's channels (None: all) over [t_from, t_to) seconds (None: its start / end)."""
    window = Window(t_from, t_to)
    pick = ChannelPick(channels)
    kind = kind_of(path)
    reader = {"tlv": read_tlv, "bdf": read_bdf, "npy": read_npy, "csv": read_csv}[kind]
    try:
        return reader(path, window, pick, columns)
    except PlotError:
        raise
    except (ValueError, OSError, UnicodeDecodeError) as e:  # a damaged file the readers' own checks let through
        raise PlotError(f"{path}: cannot be read as a .{kind} recording: {e}") from None
