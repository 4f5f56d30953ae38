// The board's QSPI flash: a 2 MB image file in the board folder, loaded into the
// emulated chip at every boot and written through on every erase and program, so
// a reset or a restart boots from the same flash. A missing image starts as a
// Pico fresh from the MicroPython uf2 (an erased chip with the uf2 written in).
//
// Gap 2 of rp2040js 1.4.1: it has no QSPI erase/program, so littlefs cannot
// format. The boot ROM's flash_range_erase ('RE') and flash_range_program ('RP')
// are served here instead: their entries in the ROM function table get a BKPT,
// and the breakpoint handler does the work on the flash array, then returns to LR.
import { closeSync, existsSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

export const FLASH_SIZE = 2 * 1024 * 1024; // RPI_PICO: W25Q16JV
const UF2_MAGIC0 = 0x0a324655;
const UF2_MAGIC1 = 0x9e5d5157;
const UF2_MAGIC_END = 0x0ab16f30;
const UF2_FAMILY_RP2040 = 0xe48bff56;
const XIP_BASE = 0x10000000;

/** Bytes of a vendored image, refused unless its sha256 is the one in SHA256SUMS beside it. */
export function readVerified(path) {
  const sums = readFileSync(join(dirname(path), 'SHA256SUMS'), 'utf8');
  const want = sums
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .find((f) => f.length === 2 && f[1].replace(/^\*/, '') === basename(path));
  if (!want) throw new Error(`${basename(path)} is not listed in SHA256SUMS`);
  const data = readFileSync(path);
  const got = createHash('sha256').update(data).digest('hex');
  if (got !== want[0]) throw new Error(`${path}: sha256 ${got}, expected ${want[0]}`);
  return data;
}

/** Write a uf2's payload into flash (an erased Uint8Array indexed by flash offset). */
export function writeUf2(uf2, flash) {
  const view = new DataView(uf2.buffer, uf2.byteOffset, uf2.byteLength);
  let blocks = 0;
  for (let off = 0; off + 512 <= uf2.length; off += 512) {
    if (view.getUint32(off, true) !== UF2_MAGIC0 || view.getUint32(off + 4, true) !== UF2_MAGIC1 ||
        view.getUint32(off + 508, true) !== UF2_MAGIC_END) {
      throw new Error(`uf2 block at ${off}: bad magic`);
    }
    const flags = view.getUint32(off + 8, true);
    if (flags & 0x2000 && view.getUint32(off + 28, true) !== UF2_FAMILY_RP2040) continue;
    const addr = view.getUint32(off + 12, true) - XIP_BASE;
    const size = view.getUint32(off + 16, true);
    if (addr < 0 || addr + size > flash.length) throw new Error(`uf2 block at ${off}: address outside the flash`);
    flash.set(uf2.subarray(off + 32, off + 32 + size), addr);
    blocks++;
  }
  if (!blocks) throw new Error('the uf2 holds no RP2040 block');
}

/** The board's flash image file: created from the uf2 when missing, written through. */
export class FlashImage {
  constructor(path, uf2Path) {
    this.path = path;
    if (!existsSync(path)) {
      const blank = new Uint8Array(FLASH_SIZE).fill(0xff);
      writeUf2(readVerified(uf2Path), blank);
      const tmp = path + '.new';
      const fd = openSync(tmp, 'w');
      writeSync(fd, blank);
      closeSync(fd);
      renameSync(tmp, path); // a board folder never holds half an image
    }
    this.fd = openSync(path, 'r+');
  }

  get size() {
    return FLASH_SIZE;
  }

  /** The image's bytes (read at every boot). */
  read() {
    const data = readFileSync(this.path);
    if (data.length !== FLASH_SIZE) throw new Error(`${this.path}: ${data.length} bytes, expected ${FLASH_SIZE}`);
    return data;
  }

  /** Write bytes at a flash offset straight into the image (the boot ROM's USB boot, chip not running). */
  write(off, bytes) {
    writeSync(this.fd, bytes, 0, bytes.length, off);
  }

  /** Persist flash[off, off+n) (after an erase or a program). */
  writeThrough(flash, off, n) {
    writeSync(this.fd, flash, off, n, off);
  }
}

/** Address (Thumb bit cleared) of a boot ROM function by its two-letter code. */
export function romFunction(chip, code) {
  const want = code.charCodeAt(0) | (code.charCodeAt(1) << 8);
  let p = chip.readUint16(0x14);
  for (let i = 0; i < 64; i++, p += 4) {
    const c = chip.readUint16(p);
    if (c === 0) break;
    if (c === want) return chip.readUint16(p + 2) & ~1;
  }
  throw new Error(`boot ROM function '${code}' not found`);
}

/** Put a BKPT #imm8 at a ROM address (the ROM is a Uint32Array in rp2040js). */
export function patchBkpt(chip, addr, imm8) {
  const word = chip.bootrom[addr >>> 2];
  const half = 0xbe00 | imm8;
  chip.bootrom[addr >>> 2] = addr & 2 ? (word & 0x0000ffff) | (half << 16) : (word & 0xffff0000) | half;
}

const BKPT_ERASE = 0xe1;
const BKPT_PROGRAM = 0xe2;

/**
 * Serve the ROM's flash_range_erase / flash_range_program (gap 2). Returns the
 * breakpoint handler to chain: (imm8) => true when it handled the breakpoint.
 */
export function serveFlashRom(chip, image, stats) {
  const erase = romFunction(chip, 'RE');
  const program = romFunction(chip, 'RP');
  patchBkpt(chip, erase, BKPT_ERASE);
  patchBkpt(chip, program, BKPT_PROGRAM);
  return (imm8) => {
    const core = chip.core;
    const r = core.registers;
    if (imm8 === BKPT_ERASE) {
      // flash_range_erase(uint32_t addr, size_t count, uint32_t block_size, uint8_t block_cmd)
      const off = r[0] >>> 0;
      const n = r[1] >>> 0;
      if (off + n <= FLASH_SIZE) {
        chip.flash.fill(0xff, off, off + n);
        image.writeThrough(chip.flash, off, n);
      }
      stats.erases++;
    } else if (imm8 === BKPT_PROGRAM) {
      // flash_range_program(uint32_t addr, const uint8_t *data, size_t count): NOR flash only clears bits
      const off = r[0] >>> 0;
      const src = r[1] >>> 0;
      const n = r[2] >>> 0;
      if (off + n <= FLASH_SIZE) {
        for (let i = 0; i < n; i++) chip.flash[off + i] &= chip.readUint8(src + i);
        image.writeThrough(chip.flash, off, n);
      }
      stats.programs++;
    } else {
      return false;
    }
    core.PC = core.LR & ~1; // return from the ROM function
    return true;
  };
}
