"""The end of a recording: the summary on stderr, the --stats-json counters, the failures
named, and the exit status."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..recording.outputs import OutputsFailed
from .console import eprint, summary, write_stats

if TYPE_CHECKING:
    from ..recording.group import Member, RecordingGroup


def record_report(
    group: RecordingGroup,
    clock_origin: float | None,
    quiet: bool,
    stats_json: str | None,
    seconds: float | None,
    stopped_by_key: bool,
) -> int:
    """The summary, the --stats-json, the failures; the exit status."""
    several = len(group.members) > 1
    for m in group.members:
        _summarise(m, several, quiet)
    if several:
        stats: dict[str, Any] | None = {
            "clock_origin": clock_origin,
            "boards": {m.label: _board_stats(m, clock_origin) for m in group.members},
        }
    else:
        only = group.members[0].result
        stats = only.stats if only is not None else None
    if stats is not None:
        write_stats(stats_json, stats)

    status = 0
    for m in group.members:
        if why := _failure(m, several):
            eprint(f"picodaq: {why}")
            status = 1
    if status:
        return status
    if any(m.ended == "stopped" for m in group.members) and seconds and not stopped_by_key:
        return 130  # Ctrl-C before the time was up: saved, but shorter than asked
    return 0


def _summarise(m: Member, several: bool, quiet: bool) -> None:
    r = m.result
    if r is None:
        return
    if quiet:
        for n in r.warnings:
            eprint(f"picodaq: warning: {m.label + ': ' if several else ''}{n}")
        return
    if several:
        eprint(f"{m.label}  {m.rec.url}" + (f" ({r.hello.platform} board {r.hello.board_id})" if r.hello else ""))
    summary(
        r.stats,
        r.seconds,
        r.outputs,
        layout=m.rec.pipeline.layout,
        status=r.status,
        notes=r.warnings,
        indent="  " if several else "",
    )


def _board_stats(m: Member, clock_origin: float | None) -> dict[str, Any]:
    """One board's entry in the --stats-json of several."""
    entry: dict[str, Any] = {"port": m.rec.url, "ended": m.ended, "error": str(m.failure) if m.failure else None}
    if m.result is not None:
        lay = m.rec.pipeline.layout
        entry.update(
            m.result.stats,
            board_id=m.result.hello.board_id if m.result.hello else None,
            outputs=m.result.outputs,
            start_time=lay.start_time if lay else None,
            start_offset_s=round(lay.start_time - clock_origin, 6)
            if lay and lay.start_time is not None and clock_origin is not None
            else None,
        )
    return entry


def _failure(m: Member, several: bool) -> str | None:
    """What went wrong with one board, as said on stderr (None: nothing)."""
    who = f"{m.label} ({m.rec.url}): " if several else ""
    if m.failure is not None:
        failed = m.failure.failed if isinstance(m.failure, OutputsFailed) else []
        what = f"{m.failure}"
        if failed:
            what = f"{len(failed)} output{'s' * (len(failed) != 1)} failed: {what}"
        if m.result is None:
            saved = ""
        elif m.ended == "failed":
            saved = "; recording stopped, what was received is saved"
        else:  # outputs dropped on the way: the others ran to the end
            others = [o for o in m.result.outputs if o not in {f["path"] for f in failed}]
            saved = f"; the other files hold the whole recording ({', '.join(others)})" if others else ""
        return f"{who}{what}{saved}"
    if m.result is not None and m.result.ended == "lost":
        return f"{who}the board on {m.rec.url} did not come back before the recording ended; what was received is saved"
    return None
