"""pyserial URL handlers (`serial_for_url` imports `protocol_<scheme>` from here, once
picodaq.transport.rfc2217_client has added this package to serial.protocol_handler_packages)."""
