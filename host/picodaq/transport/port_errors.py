"""What went wrong with a port, in a user's words: pyserial's exceptions for devices and
network URLs (rfc2217://, socket://) turned into LinkError texts; a port another program holds
is named busy."""

from __future__ import annotations

import serial

from ..errors import LinkError, PortBusy
from .ports import BUSY, port_busy

NO_RFC2217 = "does not seem to support RFC2217"  # pyserial's words when the negotiation fails
NO_RFC2217_REASON = (
    "no RFC 2217 server answered there (a `picodaq serve --raw` is reached with socket://), "
    "or it is busy with another client"
)
SERVER_CLOSED = "it stopped, the board behind it is gone, or it is busy with another client"
_DROPPED = ("Broken pipe", "Connection reset", "reader thread died", "Connection aborted")

try:
    import termios

    _TTY_ERRORS: tuple[type[Exception], ...] = (termios.error,)
except ImportError:  # not POSIX: no tty calls to fail
    _TTY_ERRORS = ()

# What pyserial's calls on an open port raise when it fails or vanishes: SerialException, OSError,
# and, from a POSIX tty's flush() and reset_input_buffer() (tcdrain, tcflush), termios.error, which
# is neither (a port gone while a STOP was flushed: "error: (5, 'Input/output error')" reached a user)
PORT_ERRORS: tuple[type[Exception], ...] = (serial.SerialException, OSError, *_TTY_ERRORS)


def is_rfc2217(url: str) -> bool:
    # pyserial's RFC 2217 client refuses write_timeout (NotImplementedError); its socket
    # writes are bounded by its socket timeout (5 s) instead
    return url.lower().startswith("rfc2217://")


def is_network(url: str) -> bool:
    return url.lower().startswith(("rfc2217://", "socket://"))


def open_error(e: BaseException, url: str) -> LinkError:
    """The LinkError for a port that would not open; the one place a port another program holds
    is named busy (PortBusy), for link, serve and flash alike. pyserial only says "Could not
    exclusively lock port ...: Resource temporarily unavailable"."""
    if port_busy(url):
        return PortBusy(f"port {url} {BUSY}", port=url)
    return LinkError(f"cannot open port {url}: {describe_port_error(e, url)}", port=url)


def describe_port_error(e: BaseException, url: str = "") -> str:
    """Why a port (a device or a URL) failed, in a few words, from pyserial's exception."""
    text = str(e).strip()
    if is_network(url) and any(d in text for d in _DROPPED):
        return f"the server closed the connection ({SERVER_CLOSED})"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    if isinstance(e, _TTY_ERRORS) and len(e.args) == 2:
        return str(e.args[1])  # termios.error: (errno, text)
    if NO_RFC2217 in text:  # pyserial appends a long repr of its Telnet options
        return NO_RFC2217_REASON
    # pyserial wraps OSError text as "[Errno 2] could not open port ...: [Errno 2] No such file"
    return text.split("] ")[-1] if "] " in text else text or type(e).__name__
