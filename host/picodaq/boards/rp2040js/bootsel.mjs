// The boot ROM's USB boot mode (BOOTSEL), which rp2040js does not emulate: a real
// RP2040 shows a USB mass-storage drive (RPI-RP2) and writes every UF2 block
// copied onto it into its flash; once it has every block of one image it reboots
// into it. Here a folder stands in for the drive (the supervisor puts it in the
// board's folder), polled for files:
//
// - INFO_UF2.TXT as a Pico shows it (every Pico sold today, a B2 chip, says v3.0;
//   the vendored B1 boot ROM's own string says v2.0; tools read only Board-ID);
// - each other file is read in 512-byte blocks as they land, and each block is
//   checked as the boot ROM checks it: both start magics and the end magic, the
//   family id flag with RP2040's family (0xE48BFF56), a 256-byte payload at a
//   256-aligned address inside the 2 MB flash, a block number below the block
//   count. A block that fails is ignored, as the ROM ignores it, and counted;
// - a good block is written into the flash at once (its 4 kB sector erased the
//   first time this session writes to it), as the ROM does;
// - when every block number of one image (one block count) has been written, the
//   drive goes away and the chip reboots into the image (onDone).
//
// What is ignored is logged once the file stops growing (a bad file leaves the
// board in BOOTSEL, as on a Pico, and only the log says why).
import { mkdirSync, readdirSync, rmSync, statSync, openSync, readSync, closeSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { patchBkpt, romFunction } from './flash.mjs';

export const INFO_UF2 = 'UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n';
const INFO_NAME = 'INFO_UF2.TXT';
const BLOCK = 512;
const MAGIC0 = 0x0a324655;
const MAGIC1 = 0x9e5d5157;
const MAGIC_END = 0x0ab16f30;
const FLAG_NOT_MAIN_FLASH = 0x1;
const FLAG_FAMILY = 0x2000;
const FAMILY_RP2040 = 0xe48bff56;
const XIP_BASE = 0x10000000;
const PAYLOAD = 256;
const SECTOR = 4096;
const POLL_MS = 50;
const SETTLE_MS = 1000; // a file unchanged this long is judged (and, if incomplete, logged)

/** The boot ROM's check of one block: null if it takes it, else why it ignores it. */
export function blockProblem(view, off, flashSize) {
  if (view.getUint32(off, true) !== MAGIC0 || view.getUint32(off + 4, true) !== MAGIC1 ||
      view.getUint32(off + 508, true) !== MAGIC_END) return 'not a UF2 block';
  const flags = view.getUint32(off + 8, true);
  if (flags & FLAG_NOT_MAIN_FLASH) return 'not for the flash';
  const family = view.getUint32(off + 28, true);
  if (!(flags & FLAG_FAMILY)) return 'no family id';
  if (family !== FAMILY_RP2040) return `family 0x${family.toString(16).padStart(8, '0')}, not RP2040's`;
  const addr = view.getUint32(off + 12, true);
  const size = view.getUint32(off + 16, true);
  if (size !== PAYLOAD || addr % PAYLOAD) return `payload ${size} bytes at 0x${addr.toString(16)}`;
  if (addr < XIP_BASE || addr - XIP_BASE + PAYLOAD > flashSize) return `address 0x${addr.toString(16)} outside the flash`;
  const no = view.getUint32(off + 20, true);
  const count = view.getUint32(off + 24, true);
  if (!count || no >= count) return `numbered ${no} of ${count}`;
  return null;
}

/** The 256-byte boot2 the ROM checks before it runs the flash: CRC-32 (MPEG-2) of 252 bytes in the last 4. */
export function boot2Valid(flash) {
  let c = 0xffffffff;
  for (let i = 0; i < 252; i++) {
    c ^= flash[i] << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
  }
  const want = (flash[252] | (flash[253] << 8) | (flash[254] << 16) | (flash[255] << 24)) >>> 0;
  return c >>> 0 === want;
}

const BKPT_USB_BOOT = 0xe3;

/**
 * The boot ROM's reset_usb_boot ('UB' in its function table; machine.bootloader() calls it):
 * a real chip resets into its USB boot mode. Its entry gets a BKPT; returns the breakpoint
 * handler to chain, which calls onCall() (the runner then shows the drive).
 */
export function serveResetUsbBoot(chip, onCall) {
  const addr = romFunction(chip, 'UB');
  patchBkpt(chip, addr, BKPT_USB_BOOT);
  return (imm8) => {
    if (imm8 !== BKPT_USB_BOOT) return false;
    chip.core.PC = addr; // the function never returns: spin on it until the runner acts between slices
    onCall();
    return true;
  };
}

export class UsbBoot {
  /**
   * @param drive  the folder standing in for the drive
   * @param flash  { size, write(off, Uint8Array) } the board's flash (written through to its image)
   * @param log    (text) => void
   * @param onDone () => void: every block of an image written; reboot into it
   */
  constructor(drive, flash, log, onDone) {
    this.drive = drive;
    this.flash = flash;
    this.log = log;
    this.onDone = onDone;
    this.timer = null;
    this.stats = { taken: 0, ignored: 0, images: 0 };
  }

  get active() {
    return this.timer !== null;
  }

  /** Show the drive (the chip entered its boot ROM's USB boot mode). */
  enter() {
    this.leave();
    rmSync(this.drive, { recursive: true, force: true });
    mkdirSync(this.drive, { recursive: true });
    writeFileSync(join(this.drive, INFO_NAME), INFO_UF2);
    this.files = new Map(); // name -> { done: bytes read, ino, size, mtime, since, judged, taken, ignored: Map }
    this.erased = new Set(); // sectors erased this session
    this.count = 0; // the block count of the image being written
    this.got = new Set(); // its block numbers written
    this.timer = setInterval(() => this.poll(), POLL_MS);
    this.log(`BOOTSEL: drive ${this.drive} (RPI-RP2) shown`);
  }

  /** The drive goes away (a reboot, a power cut, the emulator stopping). */
  leave() {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    rmSync(this.drive, { recursive: true, force: true });
  }

  poll() {
    let names;
    try {
      names = readdirSync(this.drive);
    } catch {
      return; // removed under us: the host cannot write to it either
    }
    const now = Date.now();
    for (const name of names) {
      if (name === INFO_NAME) continue;
      const path = join(this.drive, name);
      let st;
      try {
        st = statSync(path);
      } catch {
        continue;
      }
      if (!st.isFile()) continue;
      let f = this.files.get(name);
      if (!f || f.ino !== st.ino || st.size < f.done) {
        f = { done: 0, ino: st.ino, size: -1, mtime: 0, since: now, judged: false, taken: 0, ignored: new Map() };
        this.files.set(name, f);
      }
      if (st.size !== f.size || st.mtimeMs !== f.mtime) {
        f.size = st.size;
        f.mtime = st.mtimeMs;
        f.since = now;
        f.judged = false;
      }
      const whole = st.size - (st.size % BLOCK);
      if (whole > f.done && this.read(path, f, whole)) return; // an image is complete: rebooting
      if (!f.judged && now - f.since >= SETTLE_MS) {
        f.judged = true;
        this.judge(name, f);
      }
    }
  }

  read(path, f, upto) {
    const buf = new Uint8Array(upto - f.done);
    let fd;
    try {
      fd = openSync(path, 'r');
      const n = readSync(fd, buf, 0, buf.length, f.done);
      if (n < buf.length) return false;
    } catch {
      return false;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    const view = new DataView(buf.buffer);
    for (let off = 0; off < buf.length; off += BLOCK) {
      const why = blockProblem(view, off, this.flash.size);
      f.done += BLOCK;
      if (why) {
        f.ignored.set(why, (f.ignored.get(why) || 0) + 1);
        this.stats.ignored++;
        continue;
      }
      const addr = view.getUint32(off + 12, true) - XIP_BASE;
      const no = view.getUint32(off + 20, true);
      const count = view.getUint32(off + 24, true);
      if (count !== this.count) {
        this.count = count; // another image: the ROM counts its blocks from here
        this.got = new Set();
      }
      const sector = Math.floor(addr / SECTOR);
      if (!this.erased.has(sector)) {
        this.erased.add(sector);
        this.flash.write(sector * SECTOR, new Uint8Array(SECTOR).fill(0xff));
      }
      this.flash.write(addr, buf.subarray(off + 32, off + 32 + PAYLOAD));
      this.got.add(no);
      f.taken++;
      this.stats.taken++;
      if (this.got.size === this.count) {
        this.stats.images++;
        this.log(`BOOTSEL: took ${path}: all ${this.count} blocks of the image written; rebooting into it`);
        this.leave();
        this.onDone();
        return true;
      }
    }
    return false;
  }

  judge(name, f) {
    const tail = f.size % BLOCK ? `; its last ${f.size % BLOCK} bytes are no whole block` : '';
    const ignored = [...f.ignored].map(([why, n]) => `${n} ${why}`).join(', ');
    if (!f.ignored.size && !tail && f.taken) {
      this.log(`BOOTSEL: ${name}: ${f.taken} blocks written, ${this.got.size} of ${this.count} so far; waiting for the rest`);
      return;
    }
    this.log(
      `BOOTSEL: ${name} ignored in part or whole, as the boot ROM would: ${f.taken} blocks written` +
        (ignored ? `, blocks ignored: ${ignored}` : '') + tail +
        (this.count ? `; ${this.got.size} of ${this.count} blocks of the image so far` : '') + '; still in BOOTSEL',
    );
  }
}
