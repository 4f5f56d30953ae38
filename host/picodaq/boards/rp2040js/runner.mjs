// picodaq's runner: MicroPython's rp2 port (the RPI_PICO uf2) on rp2040js, with
// the chip's USB CDC on one socket and supervisor events on another.
//
//   node runner.mjs --rp2040js DIR --images DIR --flash FILE --uid HEX
//                   [--control NAME] [--without GAP,...] [--clock-start-us N]
//                   [--ads1299 ramp|signal|none] [--drive DIR] [--data-fd 3] [--events-fd 4]
//
// data fd: the CDC byte stream, both ways (the supervisor relays it to the pty).
// events fd: JSON lines both ways: requests from the supervisor (control.mjs), and
//       events to it: {"event": "cdc", "up": true}, {"event": "reboot", "why":
//       "watchdog" | "reset" | "power" | "bootsel"}, {"event": "halted", "why": "..."},
//       {"event": "bootsel", "drive": DIR, "why": "..."} (the chip is in its boot ROM's USB
//       boot mode: no CDC, the drive folder DIR shown; bootsel.mjs).
// --control: a unix socket path serving the control channel (control.mjs) to tests.
// --drive: the folder standing in for the BOOTSEL drive (RPI-RP2). The chip enters its USB
//       boot mode as a real one does: at power-on or reset with no valid boot2 in flash (a
//       blank chip), on machine.bootloader() (the ROM's reset_usb_boot), or on the control
//       channel's {"cmd": "bootsel"} (BOOTSEL held during a reset). A UF2 copied there is
//       written into the flash, and the chip boots it (bootsel.mjs).
//
// Each rp2040js gap of NOTES.md is handled here unless named in --without:
//   cdc-flow     (1) USB CDC host-to-device flow control   usbcdc.mjs
//   flash        (2) QSPI erase/program via the boot ROM   flash.mjs
//   adc-ainsel   (3) ADC round robin: AINSEL setter mask   adc.mjs
//   adc-rrobin   (4) ADC round robin: wrap from channel 4  adc.mjs
//   uid          (5) the flash unique ID                   uid.mjs
//   reset        (6) system reset (watchdog, machine.reset()) below
//   pio          (7) PIO state machines stepped on the emulated clock  pio.mjs
//   spi-dmacr    (8) SPI DMA requests follow SSPDMACR                  spi.mjs
//
// Emulated time: the core is stepped with its cycle counts at 125 MHz (8 ns a
// cycle); while it waits for an interrupt the clock jumps to the next alarm, but
// emulated time never runs faster than the wall clock: it advances at wall speed
// at most while the core waits, and slower while it is busy (the emulated chip
// runs at a fraction of a real one); time lost while busy is not caught up.
import { unlinkSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AdcModel, fixAinsel, fixRoundRobin } from './adc.mjs';
import { Ads1299Model } from './ads1299.mjs';
import { UsbBoot, boot2Valid, serveResetUsbBoot } from './bootsel.mjs';
import { answer, lineReader, serveControl } from './control.mjs';
import { FlashImage, readVerified, serveFlashRom } from './flash.mjs';
import { CdcLink } from './usbcdc.mjs';
import { clockPio } from './pio.mjs';
import { gateSpiDreq } from './spi.mjs';
import { parseId, serveUniqueId } from './uid.mjs';

const GAPS = ['cdc-flow', 'flash', 'adc-ainsel', 'adc-rrobin', 'uid', 'reset', 'pio', 'spi-dmacr'];
const CYCLE_NS = 8; // 125 MHz
const BOOT_PC = 0x10000000; // boot2 at the start of flash, as the boot ROM would jump to it
const SLICE_MS = 8; // run at most this long before serving I/O
const STEPS = 4096; // instructions between clock checks
const IN_GATE = 2048; // device bytes waiting for the supervisor before IN transfers stall
const HOST_QUEUE_MAX = 1 << 16; // host bytes queued before the supervisor is paused
const UF2 = 'RPI_PICO-v1.28.0.uf2';
const BOOTROM = 'rp2040-bootrom-b1.bin';

function parseArgs(argv) {
  const a = { without: [], clockStartUs: 0, dataFd: 3, eventsFd: 4, ads1299: 'ramp' };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${k} needs a value`);
      return argv[++i];
    };
    if (k === '--rp2040js') a.rp2040js = v();
    else if (k === '--images') a.images = v();
    else if (k === '--flash') a.flash = v();
    else if (k === '--uid') a.uid = parseId(v());
    else if (k === '--control') a.control = v();
    else if (k === '--without') a.without.push(...v().split(',').filter(Boolean));
    else if (k === '--clock-start-us') a.clockStartUs = Number(v());
    else if (k === '--ads1299') a.ads1299 = v();
    else if (k === '--drive') a.drive = v();
    else if (k === '--data-fd') a.dataFd = Number(v());
    else if (k === '--events-fd') a.eventsFd = Number(v());
    else throw new Error(`unknown argument ${k}`);
  }
  for (const g of a.without) if (!GAPS.includes(g)) throw new Error(`--without ${g}: one of ${GAPS.join(', ')}`);
  for (const k of ['rp2040js', 'images', 'flash', 'uid']) if (!a[k]) throw new Error(`--${k} is required`);
  return a;
}

// rp2040js and MicroPython's flash writes log a lot (inter-core FIFO reads, gap
// 5's companions); keep the first of each kind on stderr, count the rest
const seen = new Map();
function quietly(...args) {
  const text = args.join(' ').replace(/^\S+ \[/, '[');
  const key = text.replace(/[0-9a-f]{2,}/gi, '#').slice(0, 60);
  const n = (seen.get(key) || 0) + 1;
  seen.set(key, n);
  if (n <= 2) process.stderr.write(`rp2040js: ${text}\n`);
}
console.warn = quietly;
console.info = quietly;
console.debug = () => {};
console.log = quietly;

const args = parseArgs(process.argv.slice(2));
const handled = (gap) => !args.without.includes(gap);
const rp = await import(pathToFileURL(join(args.rp2040js, 'dist', 'esm', 'index.js')).href);
const bootrom = new Uint32Array(new Uint8Array(readVerified(join(args.images, BOOTROM))).buffer);
const image = new FlashImage(args.flash, join(args.images, UF2));
const adcModel = new AdcModel();
const adsModel = new Ads1299Model(args.ads1299);

const stats = { erases: 0, programs: 0, watchdog_reboots: 0, boots: 0, halts: 0, bootsel: 0 };
let chip = null;
let inBootsel = false; // in the boot ROM's USB boot mode: no core running, the drive shown
let cdc = null;
let powered = true;
let bootWall = 0; // performance.now() at power-on of this boot
let bootNs = 0; // emulated ns at power-on (--clock-start-us)
// the throttle's anchor: emulated time may advance from anchorNs at most as fast as
// the wall clock from anchorWall; a slice the core spent busy (behind the wall)
// moves the anchor, so a chip that fell behind never races to catch up
let anchorWall = 0;
let anchorNs = 0;
let busy = 0; // cycles executed this boot
let rebootWhy = null; // set inside the core loop, acted on between slices
let halted = null;
let timer = null;

// -- the supervisor's sockets --------------------------------------------------

const data = new Socket({ fd: args.dataFd, readable: true, writable: true });
const events = new Socket({ fd: args.eventsFd, readable: true, writable: true });
const canSend = () => data.writableLength < IN_GATE;
data.on('data', (buf) => {
  if (!chip || !powered) return; // no USB device: the bytes go nowhere
  cdc.write(new Uint8Array(buf.buffer, buf.byteOffset, buf.length));
  if (cdc.queued > HOST_QUEUE_MAX) data.pause();
});
data.on('drain', () => cdc?.release());
data.on('error', () => process.exit(0));
data.on('end', () => process.exit(0));
events.on('data', lineReader((line) => events.write(JSON.stringify(answer(control, line)) + '\n')));
events.on('error', () => process.exit(0));
events.on('end', () => process.exit(0));
const emit = (ev) => events.write(JSON.stringify(ev) + '\n');

// -- the chip ----------------------------------------------------------------

const usbBoot = args.drive
  ? new UsbBoot(args.drive, image, (text) => process.stderr.write(`rp2040: ${text}\n`), () => {
      boot('bootsel'); // the ROM reboots into what it wrote (a watchdog reset)
      kick();
    })
  : null;

function enterBootsel(why) {
  chip = null;
  cdc = null;
  halted = null;
  if (!usbBoot) {
    halted = `${why}, and this runner has no --drive for the boot ROM's USB boot mode`;
    emit({ event: 'halted', why: halted });
    return;
  }
  inBootsel = true;
  stats.bootsel++;
  usbBoot.enter();
  emit({ event: 'bootsel', drive: args.drive, why });
}

function boot(why) {
  const flash = image.read();
  if (!boot2Valid(flash)) {
    // the boot ROM finds no valid boot2 (a blank chip, or a half-written one): USB boot mode
    enterBootsel(`${why ? why + ': ' : ''}no valid boot2 in flash`);
    return;
  }
  usbBoot?.leave();
  inBootsel = false;
  chip = new rp.RP2040();
  chip.logger = new rp.ConsoleLogger(rp.LogLevel.Warn, false);
  chip.loadBootrom(bootrom); // also erases the flash array
  chip.flash.set(flash, 0);
  chip.clock.nanosCounter = bootNs = args.clockStartUs * 1000;
  const onBreak = [];
  if (handled('flash')) onBreak.push(serveFlashRom(chip, image, stats));
  onBreak.push(
    serveResetUsbBoot(chip, () => {
      rebootWhy = 'bootloader';
    }),
  );
  if (handled('uid')) serveUniqueId(chip, args.uid);
  if (handled('adc-ainsel')) fixAinsel(chip.adc);
  if (handled('adc-rrobin')) fixRoundRobin(chip.adc);
  if (handled('pio')) clockPio(chip);
  if (handled('spi-dmacr')) gateSpiDreq(chip);
  adcModel.attach(chip);
  adsModel.attach(chip);
  chip.onBreak = (code) => {
    for (const h of onBreak) if (h(code)) return;
    halted = `breakpoint ${code} at 0x${(chip.core.PC - 2).toString(16)}`;
  };
  if (handled('reset')) {
    // gap 6: a watchdog reset (machine.reset(), or a WDT that was not fed)
    // reboots the chip from its flash; its USB device goes away and comes back
    chip.watchdog = chip.peripherals[0x40058];
    chip.watchdog.onWatchdogTrigger = () => {
      rebootWhy = 'watchdog';
    };
  }
  cdc = new CdcLink(rp, chip, {
    flow: handled('cdc-flow'),
    canSend,
    onData: (buf) => data.write(Buffer.from(buf)),
    onConnected: () => emit({ event: 'cdc', up: true }),
  });
  chip.core.PC = BOOT_PC;
  busy = 0;
  halted = null;
  bootWall = anchorWall = performance.now();
  anchorNs = bootNs;
  stats.boots++;
  if (why) emit({ event: 'reboot', why });
  data.resume();
}

function powerOff() {
  chip = null;
  cdc = null;
  powered = false;
  inBootsel = false;
  usbBoot?.leave();
}

// -- running -----------------------------------------------------------------

function run() {
  timer = null;
  if (!powered || !chip) return;
  const { core, clock } = chip;
  const sliceEnd = performance.now() + SLICE_MS;
  let sleepMs = 0;
  try {
    for (;;) {
      const wallLimit = anchorNs + (performance.now() - anchorWall) * 1e6;
      for (let i = 0; i < STEPS; i++) {
        if (core.waiting) {
          const next = clock.nanosToNextAlarm;
          const due = next > 0 ? clock.nanos + next : Infinity;
          const target = Math.min(due, wallLimit);
          if (target > clock.nanos) {
            clock.tick(target - clock.nanos);
            continue;
          }
          // waiting, and at the wall clock: sleep until the wall reaches the next alarm (2 ms at most)
          sleepMs = Math.min(2, Math.max(0.25, (due - wallLimit) / 1e6));
          break;
        } else {
          const c = core.executeInstruction();
          busy += c;
          clock.tick(c * CYCLE_NS);
        }
      }
      if (rebootWhy || halted || sleepMs || performance.now() >= sliceEnd) break;
    }
  } catch (e) {
    halted = `emulator error: ${e && e.message ? e.message : e}`;
  }
  if (rebootWhy === 'bootloader') {
    rebootWhy = null;
    enterBootsel('machine.bootloader()');
  } else if (rebootWhy) {
    const why = rebootWhy;
    rebootWhy = null;
    stats.watchdog_reboots++;
    boot(why);
  } else if (halted) {
    stats.halts++;
    emit({ event: 'halted', why: halted });
    process.stderr.write(`rp2040: chip halted: ${halted}\n`);
    return; // stays halted until a reset or a power cycle
  }
  if (!sleepMs && chip) {
    // busy all slice, behind the wall clock: emulated time goes on from here at wall speed at most
    anchorWall = performance.now();
    anchorNs = chip.clock.nanos;
  }
  cdc?.release();
  timer = sleepMs ? setTimeout(run, Math.max(0.5, sleepMs)) : setImmediate(run);
}

function kick() {
  if (timer === null && powered && chip && !halted) timer = setImmediate(run);
}

// a byte from the host may wake the core before the next slice
data.on('data', kick);

// -- control -----------------------------------------------------------------

function nowNs() {
  return chip ? chip.clock.nanos : 0;
}

function at(ns, fn) {
  if (!chip) throw new Error('the board is unplugged');
  const delta = ns === undefined ? 0 : Number(ns) - chip.clock.nanos;
  if (delta <= 0) fn();
  else chip.clock.createAlarm(fn).schedule(delta);
}

function drive(pin, value, ns) {
  if (!(pin >= 0 && pin < 30)) throw new Error(`no GPIO ${pin}`);
  const c = chip;
  at(ns, () => c.gpio[pin].setInputValue(!!value));
}

function control(req) {
  switch (req.cmd) {
    case 'time': {
      const cycles = Math.floor((nowNs() - bootNs) / CYCLE_NS);
      return {
        ns: nowNs(),
        cycles,
        busy,
        busy_share: cycles ? busy / cycles : 0,
        boot: stats.boots,
        wall_s: (performance.now() - bootWall) / 1000,
        cdc: !!cdc?.connected,
        powered,
        halted,
        bootsel: inBootsel,
      };
    }
    case 'gpio':
      drive(req.pin, req.value, req.at_ns);
      return { ns: nowNs() };
    case 'marker': {
      const pin = req.pin ?? 15;
      const t = req.at_ns ?? nowNs();
      drive(pin, 1, t);
      drive(pin, 0, Number(t) + (req.width_ns ?? 100000));
      return { ns: nowNs() };
    }
    case 'adc': {
      const { cmd, ...opts } = req;
      return Object.keys(opts).length ? adcModel.set(opts) : adcModel.state();
    }
    case 'ads1299': {
      const { cmd, ...opts } = req;
      return Object.keys(opts).length ? adsModel.set(opts) : adsModel.state();
    }
    case 'reset':
      if (!powered) throw new Error('the board is unplugged');
      boot('reset');
      kick();
      return {};
    case 'bootsel':
      // BOOTSEL held during a reset: the boot ROM's USB boot mode, whatever the flash holds
      if (!powered) throw new Error('the board is unplugged');
      enterBootsel('BOOTSEL held at reset');
      return { drive: args.drive ?? null };
    case 'power':
      if (req.on && !powered) {
        powered = true;
        boot('power');
        kick();
      } else if (!req.on && powered) {
        powerOff();
      }
      return { powered };
    case 'stats':
      return {
        ...stats,
        host_queued: cdc?.queued ?? 0,
        in_held: cdc?.heldIn.length ?? 0,
        out_pending: data.writableLength,
        without: args.without,
        uf2: usbBoot?.stats ?? null,
      };
    default:
      throw new Error(`unknown cmd ${req.cmd}`);
  }
}

if (args.control) {
  try {
    unlinkSync(args.control); // a stale socket of a board that was killed
  } catch {}
  serveControl(args.control, control);
}
process.on('exit', () => usbBoot?.leave()); // the drive goes with the board
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => process.exit(0));
boot(null);
kick();
emit({ event: 'ready', control: args.control ?? null });
