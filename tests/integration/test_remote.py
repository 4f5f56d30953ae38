"""Boards on another machine: `picodaq serve` exports an emulated board over RFC 2217 (or raw
TCP) on the loopback interface, and the ordinary commands reach it by URL: flashed, recorded
bit-exact with zero loss, tested by the HIL suite; plus the server's own behaviour (one client
at a time, surviving clients, Ctrl-C) and the one-line errors."""

from __future__ import annotations

import json
import signal
import socket

import numpy as np
import pytest

from cli_helpers import (  # noqa: F401
    Lines,
    Served,
    assert_exact_recording,
    assert_one_clear_line,
    captured,
    events,
    picodaq,
    serve,
    start_picodaq,
)
from hil_helpers import run_pytest
from picodaq import contracts as C
from picodaq.boards.unix import EmulatedBoard
from picodaq.core.blocks import ramp_counts
from picodaq.transport.link import Link
from waiting import wait_for


def test_a_remote_board_over_rfc2217_is_flashed_and_recorded_with_zero_loss(tmp_path):
    with EmulatedBoard() as board:  # empty flash, as a new Pico: it gets the firmware over the network
        board.start()
        with serve(board.port) as srv:
            assert srv.url.startswith("rfc2217://")
            r = picodaq("flash", "--port", srv.url, "--timeout", "20")
            assert r.returncode == 0, r.stderr
            assert r.stdout.startswith("flashed picodaq") and f"on {srv.url}" in r.stdout
            assert "copied     main.py" in r.stderr and "HELLO from linux board" in r.stderr

            npy, tlv = tmp_path / "remote.npy", tmp_path / "remote.tlv"
            r = picodaq(
                "record",
                "--port",
                srv.url,
                "--seconds",
                "2",
                "--channels",
                "8",
                "--out",
                str(npy),
                "--out",
                str(tlv),
                "--stats-json",
                "-",
            )
            stats = assert_exact_recording(r, npy, 8, 2)

            # the capture replays to the same samples: the bytes crossed the network unaltered
            # (0xFF, doubled by Telnet, is common in the ramp)
            r2 = picodaq("replay", str(tlv), "--out", str(tmp_path / "again.npy"), "--stats-json", "-")
            assert r2.returncode == 0 and json.loads(r2.stdout)["samples"] == stats["samples"]
            assert np.array_equal(np.load(tmp_path / "again.npy"), np.load(npy))

            # a second flash finds everything in place over the same server: clients come and go
            r = picodaq("flash", "--port", srv.url, "--check")
            assert r.returncode == 0 and r.stdout.startswith("verified:"), r.stderr
            assert srv.proc.poll() is None
            srv.log.wait_for("client 127.0.0.1:")
            assert srv.log.text().count("connected") >= 6  # 3 clients, each connected and disconnected


def test_an_int32_ramp_full_of_0xff_bytes_crosses_rfc2217_exactly(make_board, tmp_path):
    """Telnet doubles every data byte 0xFF; picodaq's client must give each back once, in order."""
    board = make_board()
    with serve(board.port) as srv:
        npy, tlv = tmp_path / "i32.npy", tmp_path / "i32.tlv"
        r = picodaq(
            "record",
            "--port",
            srv.url,
            "--seconds",
            "2",
            "--rate",
            "8000",
            "--channels",
            "8",
            "--fmt",
            "int32",
            "--out",
            str(npy),
            "--out",
            str(tlv),
            "--stats-json",
            "-",
        )
        assert_exact_recording(r, npy, 8, 2, rate=8000, fmt=C.FMT_INT32)
        data = np.load(npy)
        wire = tlv.read_bytes()  # the bytes as the link received them, after Telnet's unescaping
        assert wire.count(0xFF) > 1000, "the ramp should have put many 0xFF bytes on the wire"
        assert data.view(np.uint8).tobytes().count(0xFF) > 1000


def test_a_remote_board_over_a_raw_socket(make_board, tmp_path):
    board = make_board()
    with serve(board.port, "--raw") as srv:
        assert srv.url.startswith("socket://")
        npy = tmp_path / "raw.npy"
        r = picodaq(
            "record", "--port", srv.url, "--seconds", "2", "--channels", "4", "--out", str(npy), "--stats-json", "-"
        )
        assert_exact_recording(r, npy, 4, 2)
        r = picodaq("info", "--port", srv.url, "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["port"] == srv.url and json.loads(r.stdout)["contract_ok"]


def test_one_client_at_a_time_and_the_server_outlives_them(make_board):
    board = make_board()
    with serve(board.port) as srv:
        first = Link.open(srv.url)
        try:
            assert first.get_info().contract_hash == C.CONTRACT_HASH
            # turned away by the server's own answer (the words are its), not a client timing out
            r = picodaq("info", "--port", srv.url, timeout=120)
            assert_one_clear_line(r, srv.url, "busy with another client")
            srv.log.wait_for("turned away 127.0.0.1:")
            assert first.ping().status == C.ST_OK  # the first client did not notice
        finally:
            first.close()
        srv.log.wait_for("disconnected (the client closed the connection)")
        r = picodaq("info", "--port", srv.url)
        assert r.returncode == 0 and "contract" in r.stdout, r.stderr

        # Ctrl-C stops the server cleanly, with its count
        srv.proc.send_signal(signal.SIGINT)
        assert srv.proc.wait(60) == 0
        assert "stopped after 2 client(s)" in srv.log.join()
        assert "Traceback" not in srv.log.text()


def test_a_board_unplugged_behind_the_server_is_reconnected(tmp_path):
    """The server drops the client when the board's port vanishes, reopens it when it is back;
    `record --reconnect` rides through it over the network into the same file."""
    with EmulatedBoard(unplug_seconds=0.5) as board:
        board.install_firmware()
        board.start()
        with serve(board.port) as srv:
            npy, tlv = tmp_path / "u.npy", tmp_path / "u.tlv"
            # until data after the reconnect has arrived, then Ctrl-C: a reconnect takes what the machine's
            # load makes it (4.3 s once with two CPU burners, when a 6 s recording ended as it came back)
            rec = start_picodaq(
                "record", "--port", srv.url, "--channels", "2", "--reconnect",
                "--out", str(npy), "--out", str(tlv), "--stats-json", "-",
            )  # fmt: skip
            out = Lines(rec.stderr)
            out.wait_for("samples/s/ch")
            board.unplug()
            srv.log.wait_for("the board is back on")
            out.wait_for("reconnected after")
            n0 = captured(tlv).stats.samples
            wait_for(lambda: captured(tlv).stats.samples > max(n0 + 600, 2100), 60, what="data after the reconnect")
            rec.send_signal(signal.SIGINT)
            stdout = rec.stdout.read()  # stderr is Lines' to read
            rec.wait(60)
            assert rec.returncode == 0, out.join()
            stats = json.loads(stdout)
            assert stats["reconnects"] == 1 and stats["board_restarts"] == 1, out.text()
            assert stats["crc_errors"] == stats["seq_lost"] == 0
            data = np.load(npy)
            assert data.shape[0] == stats["samples"] and data.shape[0] > 2000
            # two streams, each the ramp from its own first index; the gap between them is annotated
            rows = events(tmp_path / "u.events.csv")
            assert [e["kind"] for e in rows] == ["segment", "gap", "segment"], rows
            assert "board restarted" in rows[1]["detail"]
            bounds = [int(e["row"]) for e in rows if e["kind"] == "segment"] + [data.shape[0]]
            for seg, (a, b) in zip([e for e in rows if e["kind"] == "segment"], zip(bounds, bounds[1:])):
                assert b - a > 500
                assert np.array_equal(data[a:b], ramp_counts(int(seg["sample_index"]), b - a, 2, C.FMT_INT16))


def test_nothing_listening_is_one_line_naming_the_url():
    hold = socket.socket()
    hold.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    try:
        port = hold.getsockname()[1]
        for url in (f"rfc2217://127.0.0.1:{port}", f"socket://127.0.0.1:{port}"):
            # refused at once, and said so (not a connection attempt timing out); timeouts are hang guards
            r = picodaq("record", "--port", url, "--seconds", "1", "--out", "/dev/null.npy", timeout=120)
            assert r.returncode != 0 and url in r.stderr and "Connection refused" in r.stderr, r.stderr
            assert "Traceback" not in r.stderr
            r = picodaq("info", "--port", url, timeout=120)
            assert_one_clear_line(r, url, "Connection refused")
            r = picodaq("flash", "--port", url, timeout=120)
            assert_one_clear_line(r, url)
    finally:
        hold.close()


def test_serve_refuses_bad_addresses_and_busy_ports(make_board):
    board = EmulatedBoard()  # never started: the address is checked first
    for bad, why in (
        ("nonsense", "expected HOST:PORT"),
        ("127.0.0.1:99999", "0..65535"),
        ("127.0.0.1:http", "not a TCP port number"),
        ("::1:5000", "in brackets"),
    ):
        r = picodaq("serve", "--port", board.port, "--listen", bad)
        assert r.returncode == 2
        assert_one_clear_line(r, "--listen", why)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        live = make_board()
        r = picodaq("serve", "--port", live.port, "--listen", f"127.0.0.1:{busy.getsockname()[1]}")
        assert_one_clear_line(r, "cannot listen on 127.0.0.1", "in use")
    finally:
        busy.close()
    r = picodaq("serve", "--port", "/nonexistent/tty", "--listen", "127.0.0.1:0")
    assert_one_clear_line(r, "cannot open port /nonexistent/tty")
    r = picodaq("serve", "--port", "rfc2217://127.0.0.1:1", "--listen", "127.0.0.1:0")
    assert_one_clear_line(r, "not a URL")
    r = picodaq("serve", "--port", board.port, "--listen", "no-such-host.invalid:0")
    assert_one_clear_line(r, "cannot listen on no-such-host.invalid:0")


HIL_REMOTE = """
from picodaq import contracts as C
from picodaq_hil.stream import StreamSession, stream_config

def test_stream_from_the_remote_board(board):
    assert board.port.startswith("rfc2217://") and not board.emulated
    s = StreamSession(board, stream_config(4000, 4))
    s.start()
    s.run(1.0)
    r = s.stop()
    assert not r.problems(), r.summary()
    assert r.status is not None and r.status.state == C.STATE_IDLE
"""


def test_the_hil_suite_runs_on_a_board_served_over_rfc2217(tmp_path):
    with EmulatedBoard() as board:  # empty: the HIL suite flashes it over the network
        board.start()
        with serve(board.port) as srv:
            r = run_pytest(tmp_path, HIL_REMOTE, env={"PICODAQ_PORT": srv.url})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert f"hardware on {srv.url}" in r.stdout
    assert "1 passed" in r.stdout


def test_a_pty_gets_fixed_modem_lines_for_rfc2217():
    """pyserial's PortManager reads CTS/DSR/RI/CD and sets DTR/RTS; on a pty those ioctls fail."""
    import os
    import pty

    import serial

    from picodaq.transport.serve import FixedModemLines, has_modem_lines

    m, s = pty.openpty()
    port = serial.serial_for_url(os.ttyname(s))
    try:
        assert not has_modem_lines(port)
        with pytest.raises(OSError):
            port.dtr = False
        shim = FixedModemLines(port)
        shim.dtr = False
        shim.rts = True
        assert (shim.dtr, shim.rts, shim.cts, shim.dsr, shim.cd, shim.ri) == (False, True, True, True, True, False)
        shim.baudrate = 9600  # everything else reaches the port
        assert port.baudrate == 9600 and shim.fileno() == port.fileno()
    finally:
        port.close()
        os.close(m)
        os.close(s)
