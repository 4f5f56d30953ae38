"""The HIL fixtures (`board`, `link`, `faulty_link`) used for real, and the plugin's reports:
which board ran each test (never a silent fallback), device logs in the JUnit XML, leases under
pytest-xdist, and nothing leaking from one test into the next."""

from __future__ import annotations

import json
import os

import pytest

from hil_helpers import junit_properties, run_pytest
from picodaq import contracts as C
from picodaq_hil.faults import FaultSpec, apply_offline
from picodaq_hil.fits import fastest_rate
from picodaq_hil.stream import StreamSession, stream_config


def test_board_is_flashed_reset_synced_and_logged(board, link, request):
    assert link is board.link and link.ping().status == C.ST_OK
    assert board.hello is not None and board.hello.contract_hash == C.CONTRACT_HASH
    assert board.flash_result is not None and board.hard_resets == 0
    assert link.receiver.stats.samples == 0  # a fresh receiver since the reset
    props = dict(request.node.user_properties)
    assert props["picodaq_board"] == board.name
    assert props["picodaq_device_log"] == str(board.log.path)
    assert "HELLO   seq 0" in board.log.render()  # the reboot is in this test's log


def test_a_stream_is_bit_exact_and_complete(board):
    """8 channels of int24 at the highest rate up to 16 kHz the board takes (a Pico's ring: less)."""
    s = StreamSession(board, stream_config(fastest_rate(board, 8, "int24", 16000).rate, 8, "int24"))
    s.start()
    s.run(1.0)
    r = s.stop()
    assert not r.problems(), r.summary()
    assert r.status is not None and r.status.state == C.STATE_IDLE


@pytest.mark.picodaq_faults(
    "bitflip=2e-5,drop=2e-5,dup=2e-5,stall=2e-6,disconnect=1e-6,disconnect_s=0.3", seed=7, enabled=False
)
def test_every_frame_is_accounted_for_through_a_faulty_link(faulty_link):
    rate = fastest_rate(faulty_link.board, 8, "int16", 16000).rate
    s = StreamSession(faulty_link.board, stream_config(rate, 8), keep_bytes=True)
    s.start()
    faulty_link.proxy.set_enabled(True)
    s.run(3.0)
    # a slower board carries fewer bytes in 3 s: on until seed 7's first disconnect has come too
    s.run(120.0, until=lambda: any(f.kind == "disconnect" for f in faulty_link.proxy.faults))
    r = s.stop()
    audit = faulty_link.audit(r)
    assert audit.ok, audit.problems
    kinds = audit.faults
    assert kinds.get("bitflip") and kinds.get("drop") and kinds.get("dup") and kinds.get("disconnect")
    assert audit.lost_frames > 0 and r.reconnects >= 1  # seed 7 disconnects within the stream
    assert r.ramp.bit_exact and audit.delivered == r.stats["frames_ok"]


@pytest.mark.picodaq_faults("bitflip=3e-5,drop=3e-5,dup=3e-5", seed=12345)
def test_the_seed_reproduces_what_the_host_received(faulty_link):
    """Replaying the seed over what the board sent gives, byte for byte, what the host got."""
    board, proxy = faulty_link.board, faulty_link.proxy
    board.drain()
    got = bytearray()
    link = faulty_link.link
    link.raw_taps.append(got.extend)
    rate = fastest_rate(board, 8, "int16", 16000).rate
    link.configure(rate * 9 // 10, 0xFF, C.SRC_RAMP, C.FMT_INT16, 64)  # 64 per frame: a ring a little bigger
    link.start()
    assert link.pump_until(lambda: len(got) > 100_000 and len(proxy.faults) > 5, 60.0)  # bytes, not seconds
    link.stop()
    board.drain(quiet=0.3)
    expected, faults = apply_offline(proxy.board_bytes(), FaultSpec.parse("bitflip=3e-5,drop=3e-5,dup=3e-5"), 12345)
    assert faults == proxy.faults and len(faults) > 5
    assert len(got) > 100_000 and expected.endswith(bytes(got))


def test_unplug_and_reconnect_mid_stream(board):
    if not board.emulated and not os.environ.get("PICODAQ_UNPLUG_CMD"):
        pytest.skip("unplugging a real board needs PICODAQ_UNPLUG_CMD")
    s = StreamSession(board, stream_config(1000, 8))
    s.start()
    s.run(0.5)
    board.unplug()
    s.run(2.0)
    r = s.stop()
    # the cable carries the power: the host reconnects to a board that rebooted and sits idle;
    # what came before the unplug is all there and exact (however many instants a wall second held)
    assert r.reconnects == 1 and r.ramp.bit_exact and r.samples > 0 and r.ramp.blocks > 0
    assert r.stats["seq_lost"] == r.stats["crc_errors"] == r.samples_lost == 0
    assert r.status.state == C.STATE_IDLE and r.status.frames_sent < r.stats["frames_ok"]
    again = StreamSession(board, stream_config(1000, 8))
    again.start()
    again.run(0.5)
    assert not again.stop().problems(min_fraction=0)


def test_reset_mid_stream(board):
    if not board.emulated and not os.environ.get("PICODAQ_RESET_CMD"):
        pytest.skip("resetting a streaming real board needs PICODAQ_RESET_CMD")
    s = StreamSession(board, stream_config(1000, 8))
    s.start()
    s.run(0.5)
    board.reset_now()
    s.run(10.0, until=lambda: s.reboots > 0)
    r = s.stop()
    assert r.reboots == 1 and r.ramp.bit_exact and r.status.state == C.STATE_IDLE
    again = StreamSession(board, stream_config(1000, 8))
    again.start()
    again.run(0.5)
    assert not again.stop().problems(min_fraction=0)


# -- the plugin seen from outside: a pytest run of its own ------------------------------------

INNER = """
import pytest
from picodaq import contracts as C

def test_a_leaves_a_stream_running(board):
    board.link.configure(1000, 0xFF, C.SRC_RAMP, C.FMT_INT16, 20)
    board.link.start()
    board.link.pump_until(lambda: board.link.receiver.stats.samples > 200, 60)
    assert board.link.receiver.stats.samples > 200

def test_b_sees_nothing_of_it(board):
    link = board.link
    assert link.get_status().state == C.STATE_IDLE
    link.pump_until(lambda: False, 0.3)
    assert link.receiver.stats.samples == 0
    log = board.log.render()
    assert "SAMPLES" not in log and "flashed" not in log  # nothing leaked; no second flash
    assert board.soft_resets == 2 and board.hard_resets == 0

def test_c_fails_on_purpose(board):
    assert board.link.ping().status == 0
    assert False, "failing on purpose"
"""


def test_the_fallback_is_never_silent_and_logs_are_linked(tmp_path):
    r = run_pytest(tmp_path, INNER)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "1 failed, 2 passed" in r.stdout
    # the header and stderr say the tests ran on an emulated board, and why
    assert "picodaq HIL board: emulated board (emulator fallback: no PICODAQ_PORT" in r.stdout
    assert "picodaq_hil: 0 HIL tests ran on hardware, 3 on emulated boards (no real board was tested)" in r.stderr
    assert "3 tests on emulated board" in r.stdout
    props = junit_properties(tmp_path / "junit.xml")
    assert set(props) == {"test_a_leaves_a_stream_running", "test_b_sees_nothing_of_it", "test_c_fails_on_purpose"}
    boards = {p["picodaq_board"] for p in props.values()}
    assert len(boards) == 1 and boards.pop().startswith("emulated board")
    for name, p in props.items():
        log = p["picodaq_device_log"]
        assert os.path.isfile(log) and name in log and os.path.isfile(log[:-4] + ".tlv")
    # a failure shows the device's recent output
    assert "picodaq device log" in r.stdout and "ACK     seq 2: PING" in r.stdout


def test_a_bad_fault_seed_or_port_list_is_named(tmp_path):
    r = run_pytest(tmp_path, "def test_x(faulty_link):\n    pass\n", env={"PICODAQ_FAULT_SEED": "abc"})
    assert r.returncode != 0 and "Traceback" not in r.stdout + r.stderr
    assert "picodaq: PICODAQ_FAULT_SEED='abc' is not a whole number" in r.stdout
    r = run_pytest(tmp_path, "def test_x(board):\n    pass\n", env={"PICODAQ_PORT": ","})
    assert r.returncode != 0 and "picodaq: PICODAQ_PORT=',' names no port" in r.stdout


def test_requiring_hardware_refuses_the_fallback(tmp_path):
    r = run_pytest(tmp_path, "def test_x(board):\n    pass\n", env={"PICODAQ_REQUIRE_HARDWARE": "1"})
    assert r.returncode != 0
    assert "picodaq: PICODAQ_REQUIRE_HARDWARE=1 but no board is attached" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr


LEASED = """
import json, os, time
import pytest
from picodaq_hil.stream import StreamSession, stream_config

@pytest.mark.parametrize("n", range(4))
def test_stream(board, n):
    t0 = time.monotonic()
    s = StreamSession(board, stream_config(1000, 4))
    s.start()
    s.run(0.3)
    r = s.stop()
    assert not r.problems(min_fraction=0), r.summary()
    with open(os.environ["SPANS"], "a") as f:
        f.write(json.dumps([os.environ.get("PYTEST_XDIST_WORKER"), t0, time.monotonic()]) + "\\n")
"""


def test_xdist_workers_take_turns_on_one_board(tmp_path):
    """One 'real' board (an emulator's port given as PICODAQ_PORT) and two xdist workers: the
    lease lets only one worker use it at a time, and both get their turn."""
    from picodaq.boards.unix import EmulatedBoard

    spans = tmp_path / "spans.jsonl"
    with EmulatedBoard() as emu:
        emu.install_firmware()
        emu.start()
        r = run_pytest(tmp_path, LEASED, "-n", "2", env={"PICODAQ_PORT": emu.port, "SPANS": str(spans)})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert f"hardware on {emu.port}" in r.stdout  # as far as the suite knows, it is real hardware
    rows = sorted(json.loads(line) for line in spans.read_text().splitlines())
    assert len(rows) == 4 and len({w for w, _, _ in rows}) == 2
    rows.sort(key=lambda row: row[1])
    for (_, _, end), (_, start, _) in zip(rows, rows[1:]):
        assert start >= end  # never two tests on the board at once
