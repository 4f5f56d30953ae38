"""The one board-choice rule every command (and the HIL suite) follows: an explicit port, else
the one board attached by USB id, else an emulated board."""

from __future__ import annotations

from picodaq.transport.ports import PortInfo, choose_port

PICO = PortInfo("/dev/ttyACM0", "Board in FS mode", True, "E6614C311B7A1234")
PICO2 = PortInfo("/dev/ttyACM1", "Board in FS mode", True, "E6614C311B7A9999")
OTHER = PortInfo("/dev/ttyUSB0", "CP2102", False, "0001")


def test_choose_port_explicit_then_the_one_board_then_emulated():
    # a given port wins, attached boards or not, and is not checked
    c = choose_port("/dev/nothing", [PICO, PICO2])
    assert (c.port, c.usb, c.emulated, c.attached) == ("/dev/nothing", None, False, ())
    # else the one board with the Raspberry Pi USB id; other serial ports do not count
    c = choose_port(None, [OTHER, PICO])
    assert (c.port, c.usb, c.emulated) == ("/dev/ttyACM0", PICO, False)
    assert c.reason == "the one board found by USB id 0x2E8A"
    # never a guess between boards: none chosen, the boards named for the caller
    c = choose_port(None, [PICO, OTHER, PICO2])
    assert c.emulated and c.attached == (PICO, PICO2)
    assert c.reason == "2 boards attached (/dev/ttyACM0, /dev/ttyACM1)"
    # else an emulated board
    c = choose_port(None, [OTHER])
    assert c.emulated and c.attached == () and c.reason == "no board with USB id 0x2E8A"


def test_choose_port_looks_at_the_attached_boards_by_default(monkeypatch):
    monkeypatch.setattr("picodaq.transport.ports.serial_ports", lambda: [OTHER, PICO2])
    assert choose_port().usb == PICO2
    assert choose_port("").usb == PICO2  # an empty --port is no port
