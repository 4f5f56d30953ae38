"""Plots in Robot Framework logs: the signal a failed test received, around its first wrong or missing
instant, and a keyword that draws any recording into the log.

A failed test's plot comes from its device log's capture (`<test>.tlv`: the bytes the host received),
replayed through picodaq's pipeline, so it shows exactly what the host got, gaps placed and labelled
by the same Timeline as every recording. The first problem is found in the order the stream ran:

- a wrong instant: a value that differs from the ramp (PROTOCOL.md) for its sample index, when the
  source is the ramp;
- a missing instant: a gap where samples were lost (the index jumped);
- failing both, the first board reset (a new stream after a reboot), else the first restart;

and the plot spans HALF_WINDOW seconds either side of it, with a dashed line at the instant. Images
go to `<report dir>/plots/` and into the log as `<img>` (as Robot's Screenshot library does), so
log.html shows them and they travel with it.

    log_failure_plot(capture, report_dir)      the teardown of a failed test calls this (robotlib)
    PicodaqPlots                               the keyword library: Plot Recording To Log, Plot Failure To Log
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from robot.api import logger
from robot.api.deco import keyword, library
from robot.libraries.BuiltIn import BuiltIn

from picodaq import contracts as C
from picodaq.core.blocks import SamplesBlock, ramp_counts
from picodaq.errors import PicodaqError
from picodaq.plot.draw import caption, save
from picodaq.plot.load import load
from picodaq.recording.outputs import Output
from picodaq.recording.pipeline import replay
from picodaq.recording.timeline import LOST, REBOOT, Gap, Layout, LayoutChanged

HALF_WINDOW = 0.25  # seconds of signal either side of the first problem
IMAGE_WIDTH = 1000  # pixels, as the log shows it (the file is larger: click to open)


@dataclass(frozen=True)
class FirstProblem:
    t_s: float  # on the recording's grid
    what: str  # "first missing instant (gap: 40 samples lost)", ...


class _Found(Exception):
    """Ends the replay at the first wrong or missing instant."""


class _Finder(Output):
    """A pipeline sink that looks for the first wrong or missing instant."""

    def __init__(self) -> None:
        self.path = Path("-")
        self.warnings: list[str] = []
        self.layout: Layout | None = None
        self.found: FirstProblem | None = None
        self.fallback: FirstProblem | None = None  # a reset, else a restart: reported if nothing worse is

    def on_layout(self, layout: Layout) -> None:
        self.layout = layout

    def on_samples(self, pos: int, row: int, block: SamplesBlock) -> None:
        lay = self.layout
        if lay is None or lay.source != C.SRC_RAMP:
            return
        counts = block.counts
        want = ramp_counts(block.first_index, block.n_samples, block.n_channels, block.fmt)
        bad = np.argwhere(counts != want)
        if len(bad):
            r, c = (int(x) for x in bad[0])
            self.found = FirstProblem(
                (pos + r) / lay.rate,
                f"first wrong instant: {lay.labels[c]} = {counts[r, c]}, the ramp says {want[r, c]}"
                f" (sample index {block.first_index + r})",
            )
            raise _Found

    def on_gap(self, gap: Gap) -> None:
        rate = self.layout.rate if self.layout is not None else 1
        problem = FirstProblem(gap.pos / rate, f"first missing instant ({gap.describe()})")
        if gap.reason == LOST:
            self.found = problem
            raise _Found
        if self.fallback is None or (gap.reason == REBOOT and "board restarted" not in self.fallback.what):
            self.fallback = FirstProblem(gap.pos / rate, gap.describe())

    def written(self) -> list[Path]:
        return []


def first_problem(capture: Path) -> FirstProblem | None:
    """The first wrong or missing instant of a capture (else its first reset or restart), or None."""
    finder = _Finder()
    try:
        replay(capture, [finder])
    except (_Found, LayoutChanged):  # found it; or a second stream of another layout, where the search ends
        pass
    return finder.found or finder.fallback


def failure_plot(capture: Path, out: Path, half_window: float = HALF_WINDOW) -> str:
    """Draw the signal of capture around its first problem into out; returns the caption for the log."""
    problem = first_problem(capture)
    if problem is None:
        pic = load(capture)
        what = "no wrong or missing instant in the received signal; all of it"
    else:
        t0 = max(0.0, problem.t_s - half_window)
        pic = load(capture, t_from=t0, t_to=t0 + 2 * half_window)
        pic.highlight = (problem.t_s, problem.what)
        what = f"{problem.what} at {problem.t_s:.6f} s"
    save(pic, out)
    return f"The received signal ({capture.name}): {what}. {caption(pic)}."


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_.")[:120] or "plot"


def _image_path(report_dir: Path, name: str) -> Path:
    d = report_dir / "plots"
    d.mkdir(parents=True, exist_ok=True)
    base = _slug(name)
    out = d / f"{base}.png"
    n = 2
    while out.exists():
        out = d / f"{base}-{n}.png"
        n += 1
    return out


def log_image(png: Path, report_dir: Path, text: str) -> None:
    """An <img> in the log, linked relative to log.html's folder (report_dir), as the Screenshot library does."""
    rel = html.escape(os.path.relpath(png, report_dir).replace(os.sep, "/"))
    logger.info(
        f'{html.escape(text)}<br><a href="{rel}"><img src="{rel}" width="{IMAGE_WIDTH}px"></a>',
        html=True,
    )


def _test_name() -> str:
    bi = BuiltIn()
    return f"{bi.get_variable_value('${SUITE NAME}')}.{bi.get_variable_value('${TEST NAME}')}"


def log_failure_plot(capture: Path | str, report_dir: Path | str) -> Path | None:
    """For a failed test: the plot of what it received, around the first wrong or missing instant, in
    the log. Never fails the teardown: a plot that cannot be made is said so in the log."""
    capture, report_dir = Path(capture), Path(report_dir)
    if not capture.is_file() or not capture.stat().st_size:
        logger.info("No plot of the received signal: nothing was received in this test.")
        return None
    out = _image_path(report_dir, _test_name())
    try:
        text = failure_plot(capture, out)
    except (PicodaqError, OSError, ValueError) as e:
        logger.info(f"No plot of the received signal: {e}")
        return None
    log_image(out, report_dir, text)
    return out


@library(scope="GLOBAL", doc_format="ROBOT")
class PicodaqPlots:
    """Recordings drawn into the log (``picodaq plot``'s readers and drawing).

    Images are written to ``plots/`` under ``report_dir`` (where log.html is; default: the output
    directory) and shown in the log, linked to the full-size file.

    | Plot Recording To Log | ${dir}/run.npy |
    | Plot Recording To Log | ${dir}/run.bdf | channels=0-3 | start=1.5 | end=2 |
    """

    def __init__(self, report_dir: str | None = None) -> None:
        self._report_dir = report_dir

    def _root(self) -> Path:
        d = self._report_dir or BuiltIn().get_variable_value("${OUTPUT DIR}") or "."
        return Path(d).absolute()

    @keyword
    def plot_recording_to_log(
        self, path: str, channels: str | None = None, start: float | None = None, end: float | None = None
    ) -> str:
        """Draws a recording (.tlv, .bdf, .npy with its events list, .csv) into the log: stacked channels in
        physical units, gaps shaded with their reason, markers; ``channels`` as ``picodaq plot
        --channels`` (0,2,4-7), ``start``/``end`` in seconds. Returns the image's path."""
        p = Path(path)
        out = _image_path(self._root(), f"{_test_name()}.{p.name}")
        try:
            pic = load(p, channels or None, start, end)
            save(pic, out)
        except PicodaqError as e:
            raise AssertionError(f"picodaq plot: {e}") from None
        log_image(out, self._root(), f"{p.name}: {pic.about}. {caption(pic)}.")
        return str(out)

    @keyword
    def plot_failure_to_log(self, capture: str) -> str:
        """Draws a capture (.tlv) around its first wrong or missing instant into the log (what a failed
        test's teardown does with its device log). Returns the image's path, or empty if none was made."""
        out = log_failure_plot(Path(capture), self._root())
        return str(out or "")
