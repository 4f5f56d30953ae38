"""The flasher's helpers (MicroPython, run on the board through the raw REPL).

The host sends this file as it is, once a session, right after entering the
raw REPL; later exchanges call these functions with their parameters as
literals, e.g. `_pd_probe('picodaq_fw/manifest.json', 'picodaq_fw')`. Answers
are printed as repr() for the host's ast.literal_eval. Every name starts with
_pd_ so nothing clashes with what the REPL already holds, and nothing here
needs more than a bare MicroPython: hashlib and os.statvfs may be missing
(the host then hashes files it reads back, and skips its space check).
"""

import os
import sys

try:
    import hashlib
except ImportError:
    hashlib = None  # type: ignore[assignment]


def _pd_sha(p):
    """SHA-256 of file p in hex; None when it is missing, '' when the board has no hashlib."""
    try:
        f = open(p, "rb")
    except OSError:
        return None
    if hashlib is None:
        f.close()
        return ""
    h = hashlib.sha256()
    b = bytearray(512)  # read into one buffer: a board's heap is small
    m = memoryview(b)
    while True:
        n = f.readinto(b)
        if not n:
            break
        h.update(m[:n])
    f.close()
    return "".join("%02x" % x for x in h.digest())


def _pd_size(p):
    try:
        return os.stat(p)[6]
    except OSError:
        return None


def _pd_listdir(d):
    """[(name, type, size)] of folder d, None when it is missing."""
    try:
        return [(e[0], e[1], _pd_size(d + "/" + e[0])) for e in os.ilistdir(d)]  # type: ignore[attr-defined]
    except OSError:
        return None


def _pd_probe(manifest, package):
    """Print what the board is and holds: implementation, version, .mpy format, platform,
    machine, statvfs, the package folder's listing, main.py's size, the manifest's text
    and whether hashlib is there."""
    i = sys.implementation
    try:
        s = tuple(os.statvfs("."))
    except (OSError, AttributeError):
        s = None
    try:
        with open(manifest) as f:
            mf = f.read()
    except OSError:
        mf = None
    print(
        repr(
            (
                i.name,
                tuple(i.version),
                getattr(i, "_mpy", None),
                sys.platform,
                getattr(i, "_machine", ""),
                s,
                _pd_listdir(package),
                _pd_size("main.py"),
                mf,
                hashlib is not None,
            )
        )
    )


def _pd_hashes(paths):
    print(repr([_pd_sha(p) for p in paths]))


def _pd_statvfs():
    print(repr(tuple(os.statvfs("."))))


def _pd_rename(src, dst):
    """Rename src over dst (a filesystem that refuses to replace a file gets dst removed first)."""
    try:
        os.rename(src, dst)
    except OSError:
        os.remove(dst)
        os.rename(src, dst)


def _pd_discard(p):
    """After a failed copy: close the file mpremote's fs_writefile left open (its global f),
    and remove the partial copy p."""
    try:
        globals()["f"].close()
    except Exception:
        pass
    try:
        os.remove(p)
    except OSError:
        pass
