"""`rfc2217fast://HOST:PORT`: picodaq's RFC 2217 client (picodaq.transport.rfc2217_client) for pyserial's
serial_for_url; the port keeps the plain `rfc2217://` URL as its name."""

from __future__ import annotations

from ..rfc2217_client import FastRfc2217Serial, plain_url


def serial_class_for_url(url: str) -> tuple[str, type[FastRfc2217Serial]]:
    return plain_url(url), FastRfc2217Serial
