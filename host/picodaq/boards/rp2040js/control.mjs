// The control channel: JSON lines, one request per line, one reply per request
// ({"ok": true, ...} or {"ok": false, "error": "..."}). Served on a unix socket
// for tests and tools, and on the supervisor's fd; both reach the same handler.
//
// Requests (each a JSON object with "cmd"):
//   {"cmd": "time"}   emulated time and CPU use of the current boot:
//                     ns (emulated ns since power-on), cycles (ns / 8: cycles
//                     elapsed at 125 MHz), busy (cycles the core executed; the
//                     rest it spent waiting for an interrupt), busy_share
//                     (busy / cycles since power-on; for a window, take the
//                     differences of two replies), boot (boots so
//                     far, 1 = the first), wall_s (wall seconds since power-on),
//                     cdc (true once USB CDC is enumerated)
//   {"cmd": "gpio", "pin": N, "value": 0|1, "at_ns": T}
//                     drive a GPIO input at emulated time T of this boot
//                     (now if T is missing or past)
//   {"cmd": "marker", "at_ns": T, "width_ns": W, "pin": N}
//                     a pulse on the marker pin (default GPIO 15, the pin the
//                     tests' picodaq_board.json names): high at T, low at T + W
//                     (W default 100000)
//   {"cmd": "adc", ...}  set (mode, unit_ns, origin, values) and/or read the
//                     ADC model (adc.mjs); the reply has its state, with
//                     origin_ns once the first conversion fixed it
//   {"cmd": "ads1299", "mode": "none"|"ramp"|"signal", "id": N}
//                     set and/or read the ADS1299 model on SPI0 (ads1299.mjs);
//                     presence and ID are seen by the firmware at its next boot
//   {"cmd": "reset"}  hard reset: reboot from the flash (the port stays)
//   {"cmd": "power", "on": false|true}  unplugged / plugged in again
//   {"cmd": "stats"}  counters: flash erases/programs, watchdog reboots,
//                     host bytes queued, IN transfers held, ...
import { createServer } from 'node:net';

export function lineReader(onLine) {
  let buf = '';
  return (chunk) => {
    buf += chunk.toString('utf8');
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line) onLine(line);
    }
  };
}

export function answer(handler, line) {
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    return { ok: false, error: `not JSON: ${line.slice(0, 80)}` };
  }
  try {
    const r = handler(req);
    return { ok: true, ...(r || {}) };
  } catch (e) {
    return { ok: false, error: String(e && e.message ? e.message : e) };
  }
}

/** Serve the handler on a unix socket at path. */
export function serveControl(path, handler) {
  const server = createServer((sock) => {
    sock.on('data', lineReader((line) => sock.write(JSON.stringify(answer(handler, line)) + '\n')));
    sock.on('error', () => {});
  });
  server.listen(path);
  return server;
}
