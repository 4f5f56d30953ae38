// A TI ADS1299 on the chip's SPI0, wired as hal_rp2.py's defaults say: SCK 18,
// MOSI 19, MISO 16, CS 17 (GPIO, active low), DRDY 20 (active low), RESET 21.
//
// Registers (ID reads 0x3E: ADS1299, 8 channels), the opcodes (WAKEUP, STANDBY,
// RESET, START, STOP, RDATAC, SDATAC, RDATA, RREG, WREG), the RESET pin, and,
// once started, a conversion every 1/fs (fs = 16000 >> CONFIG1.DR): DRDY pulses
// high, then falls with a new 27-byte frame (status 0xC00000, then 8 channels
// of int24 big-endian), clocked out by the next 27 SPI bytes while CS is low; a
// frame not read is overwritten by the next one, as on the chip, and counted
// (state: missed, frames not read whole before the next DRDY). An SPI byte takes 8
// periods of the clock the firmware set (SSPCPSR, SCR), 1 us if none; a clock
// above the chip's 20 MHz is counted too (state: fast_bytes).
//
// Modes (runner --ads1299, or the control channel {"cmd": "ads1299", "mode": ...}):
//   none    no chip on the bus: MISO reads 0 (the firmware finds no ADS1299)
//   ramp    (default) every channel c of frame n (n counted from START) is the
//           PROTOCOL.md ramp in 24 bits: (n * 1021 + c * 65537 + 0x800000) & 0xFFFFFF
//           as two's complement
//   signal  each channel as its CHnSET says: input 5 (test) is the internal test
//           signal, a square wave of +-1.875 mV (CONFIG2 CAL_AMP0 = 0; x2 when 1)
//           at fCLK / 2^21 = 0.9765625 Hz (CAL_FREQ 00; 1.953125 Hz for 01, DC
//           for 11), starting high at START: code = trunc(+-V * gain * 2^23 / 4.5 V);
//           every other input, and a powered-down channel, reads 0
// {"id": N} sets the ID register (a wrong chip); presence and ID are read by the
// firmware at boot, so change them before a reset.
const CS_PIN = 17;
const DRDY_PIN = 20;
const RESET_PIN = 21;
const BYTE_NS = 1000; // without a clock set
const SCLK_MAX = 20e6; // the ADS1299's tSCLK >= 50 ns
const VREF = 4.5;
const FCLK = 2048000;
const GAINS = [1, 2, 4, 6, 8, 12, 24];
const COMMANDS = new Set([0x02, 0x04, 0x06, 0x08, 0x0a, 0x10, 0x11, 0x12]);
const DEFAULTS = [0x3e, 0x96, 0xc0, 0x60, 0x00, 0x61, 0x61, 0x61, 0x61, 0x61, 0x61, 0x61, 0x61,
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00];

export class Ads1299Model {
  constructor(mode = 'ramp') {
    this.mode = mode;
    this.id = 0x3e;
    this.setMode(mode);
  }

  setMode(mode) {
    if (!['none', 'ramp', 'signal'].includes(mode)) throw new Error(`ads1299 mode ${mode}: none, ramp or signal`);
    this.mode = mode;
  }

  set(opts) {
    if (opts.mode !== undefined) this.setMode(opts.mode);
    if (opts.id !== undefined) this.id = opts.id & 0xff;
    return this.state();
  }

  state() {
    const c = this.chip;
    return { mode: this.mode, id: this.id, running: !!c?.running, rdatac: !!c?.rdatac, frames: c?.n ?? 0,
             missed: c?.missed ?? 0, fast_bytes: c?.fastBytes ?? 0, sclk_hz: c?.spi.clockFrequency ?? 0,
             regs: c ? Array.from(c.regs) : null };
  }

  /** Wire a fresh ADS1299 to this boot's RP2040 (a new chip at every power-on). */
  attach(chip) {
    this.chip = null;
    if (this.mode === 'none') return;
    this.chip = new Ads1299(chip, this);
  }
}

class Ads1299 {
  constructor(rp, model) {
    this.rp = rp;
    this.model = model;
    this.spi = rp.spi[0];
    this.regs = new Uint8Array(DEFAULTS);
    this.regs[0] = model.id;
    this.frame = new Uint8Array(27);
    this.reset();
    this.byteAlarm = rp.clock.createAlarm(() => this.spi.completeTransmit(this.pendingRx));
    this.convAlarm = rp.clock.createAlarm(() => this.convert());
    this.latchAlarm = rp.clock.createAlarm(() => this.latch());
    this.pendingRx = 0;
    this.missed = 0;
    this.fastBytes = 0;
    this.spi.onTransmit = (b) => {
      this.pendingRx = this.exchange(b & 0xff);
      const hz = this.spi.clockFrequency;
      if (hz > SCLK_MAX) this.fastBytes++;
      this.byteAlarm.schedule(hz > 0 ? 8e9 / hz : BYTE_NS);
    };
    this.drdy(true);
    const cs = rp.gpio[CS_PIN];
    this.selected = false;
    cs.addListener(() => {
      const low = cs.outputEnable && !cs.outputValue;
      if (this.selected && !low) this.deselect();
      this.selected = low;
    });
    const rst = rp.gpio[RESET_PIN];
    let rstLow = false;
    rst.addListener(() => {
      const low = rst.outputEnable && !rst.outputValue;
      if (rstLow && !low) this.reset(); // a RESET pulse
      rstLow = low;
    });
  }

  reset() {
    this.regs.set(DEFAULTS);
    this.regs[0] = this.model.id;
    this.rdatac = true; // the chip wakes up in RDATAC
    this.running = false;
    this.stage = 0;
    this.op = 0;
    this.reg = 0;
    this.left = 0;
    this.out = -1; // index of the next frame byte to clock out, -1: none latched
    this.n = 0;
    this.convAlarm?.cancel();
    this.latchAlarm?.cancel();
  }

  drdy(high) {
    this.rp.gpio[DRDY_PIN].setInputValue(high);
  }

  get rate() {
    return 16000 >> (this.regs[1] & 7);
  }

  deselect() {
    this.stage = 0;
    this.op = 0;
  }

  /** One SPI byte in; returns the byte clocked out on MISO meanwhile. */
  exchange(b) {
    if (!this.selected) return 0;
    if (this.rdatac && this.out >= 0 && this.stage === 0) {
      // RDATAC: the latched frame shifts out; only SDATAC is decoded meanwhile
      const r = this.frame[this.out++];
      if (this.out === 1) this.drdy(true);
      if (this.out >= 27) this.out = -1;
      if (COMMANDS.has(b)) this.command(b); // START, STOP, SDATAC ... are decoded in RDATAC too
      return r;
    }
    if (this.stage === 0) {
      if ((b & 0xe0) === 0x20 || (b & 0xe0) === 0x40) {
        this.op = b & 0xe0;
        this.reg = b & 0x1f;
        this.stage = 1;
      } else {
        this.command(b);
      }
      return 0;
    }
    if (this.stage === 1) {
      this.left = (b & 0x1f) + 1;
      this.stage = 2;
      return 0;
    }
    if (this.left <= 0) return 0;
    this.left--;
    const r = this.reg < this.regs.length ? this.regs[this.reg] : 0;
    if (this.op === 0x40 && !this.rdatac && this.reg > 0 && this.reg < this.regs.length) {
      this.regs[this.reg] = b; // ID is read-only; WREG is ignored in RDATAC, as on the chip
    }
    this.reg++;
    if (this.left === 0) this.stage = 0;
    return this.op === 0x20 ? r : 0;
  }

  command(b) {
    switch (b) {
      case 0x06: // RESET
        this.reset();
        break;
      case 0x08: // START
        this.running = true;
        this.n = 0;
        this.convAlarm.schedule(1e9 / this.rate);
        break;
      case 0x0a: // STOP
        this.running = false;
        this.convAlarm.cancel();
        break;
      case 0x10: // RDATAC
        this.rdatac = true;
        break;
      case 0x11: // SDATAC
        this.rdatac = false;
        break;
      default: // WAKEUP, STANDBY, RDATA: nothing to model
        break;
    }
  }

  convert() {
    if (!this.running) return;
    this.convAlarm.schedule(1e9 / this.rate);
    this.drdy(true); // DRDY pulses high before new data
    this.latchAlarm.schedule(2000);
  }

  latch() {
    if (this.out >= 0 && this.n > 0) this.missed++; // the last frame was not read whole
    const f = this.frame;
    f[0] = 0xc0;
    f[1] = 0;
    f[2] = 0;
    const n = this.n++;
    for (let c = 0; c < 8; c++) {
      const v = this.value(c, n) & 0xffffff;
      f[3 + 3 * c] = v >>> 16;
      f[4 + 3 * c] = (v >>> 8) & 0xff;
      f[5 + 3 * c] = v & 0xff;
    }
    this.out = 0;
    this.drdy(false); // falling edge: data ready
  }

  value(c, n) {
    if (this.model.mode === 'ramp') return n * 1021 + c * 65537 + 0x800000;
    const set = this.regs[5 + c];
    if (set & 0x80 || (set & 7) !== 5) return 0; // powered down, or not the test signal
    const gain = GAINS[(set >> 4) & 7] ?? 24;
    const cfg2 = this.regs[2];
    const amp = ((cfg2 & 4 ? 2 : 1) * VREF) / 2400;
    const freq = cfg2 & 3;
    const code = Math.trunc((amp * gain * 2 ** 23) / VREF);
    if (freq === 3) return code; // DC
    const halfPeriod = (this.rate * (freq === 1 ? 2 ** 20 : 2 ** 21)) / (2 * FCLK); // frames
    return Math.floor(n / halfPeriod) % 2 === 0 ? code : -code;
  }
}
