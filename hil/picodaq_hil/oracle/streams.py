"""Checks of one finished stream (a StreamResult): bit-exact ramp, markers, loss accounting
over a faulty link. Each raises AssertionError saying what is wrong, or returns a line for
the log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..faults import FaultyLinkProxy
    from ..stream import StreamResult


def check_bit_exact(result: StreamResult) -> str:
    """Every SAMPLES block of the stream equals the ramp of PROTOCOL.md, bit for bit."""
    r = result.ramp
    if r is None or not r.bit_exact:
        detail = "; ".join(r.mismatches) if r and r.blocks else "no ramp blocks"
        raise AssertionError(f"not bit-exact: {detail}")
    return f"{r.blocks} blocks, {r.samples} instants x {r.n_channels} channels bit-exact"


def check_markers(result: StreamResult, codes: list[int]) -> str:
    """The stream's MARKERs carry exactly these codes, in order, each at a sample index within
    the stream and never going backwards."""
    got = [m.code for m in result.markers]
    if got != codes:
        raise AssertionError(f"markers {got}, expected {codes}")
    idx = [m.sample_index for m in result.markers]
    if idx != sorted(idx):
        raise AssertionError(f"marker sample indices go backwards: {idx}")
    ramp = result.ramp
    if ramp is not None and ramp.first_index is not None and ramp.end_index is not None:
        lo, hi = ramp.first_index, ramp.end_index
        bad = [i for i in idx if not lo <= i <= hi]
        if bad:
            raise AssertionError(f"marker indices {bad} outside the stream's instants {lo}..{hi}")
    return f"markers {codes} at sample indices {idx}"


def loss_accounting(
    result: StreamResult, proxy: FaultyLinkProxy, expect_losses: bool
) -> tuple[str, list[str], dict[str, Any]]:
    """The stream over the faulty link audited against what the board really sent
    (accounting.audit_link): every intact frame delivered exactly once, every lost frame and
    sample counted, the fault log explaining exactly which frames were damaged, every delivered
    block bit-exact; with expect_losses, the faults must also have cost a frame.
    Returns (a line for the log, the problems found, the audit's numbers)."""
    audit = result.audit(proxy.board_bytes(), proxy.faults)
    said = f"seed {proxy.seed}, spec {proxy.spec}: {audit.summary()}"
    problems = list(audit.problems)
    if result.ramp is not None and not result.ramp.bit_exact:
        problems.append("delivered blocks differ from the ramp: " + "; ".join(result.ramp.mismatches))
    if expect_losses and not audit.lost_frames:
        problems.append(f"the faults ({audit.faults}) cost no frame: nothing was tested")
    return (
        said,
        problems,
        {
            "board_frames": audit.board_frames,
            "intact": audit.intact,
            "delivered": audit.delivered,
            "lost_frames": audit.lost_frames,
            "lost_samples": audit.lost_samples,
            "counted_frames": audit.counted_frames,
            "counted_samples": audit.counted_samples,
            "connections": audit.connections,
            **{f"faults_{k}": v for k, v in audit.faults.items()},
        },
    )
