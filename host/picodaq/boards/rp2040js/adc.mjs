// The ADC: the two round-robin bugs of rp2040js 1.4.1, and what each conversion reads.
//
// Gap 3: the activeChannel setter masks with the AINSEL shift (12) instead of the
//   mask (7), so with CS.RROBIN every conversion after the first is channel 0 (or 4).
// Gap 4: from channel 4 the next channel is computed as (4 + 1 + 1) mod 5 = 1,
//   skipping channel 0 (with channels 0 and 4 enabled it stays on 4).
//
// Models (chosen over the control channel; the same for every boot of the board):
//   code   (default) every conversion answers a 12-bit code of its channel and
//          its emulated time:  bits 11..9 = channel (0-4),
//          bits 8..0 = round((t - origin) / unit_ns) mod 512, where t is the
//          emulated time (ns) at which the conversion starts, unit_ns is chosen
//          by the test (default 1000: microseconds) and origin is the start of
//          the first conversion after the model was set (origin "first", the
//          default) or an absolute emulated time in ns.
//          With unit_ns = the conversion period on the DMA path, conversion j of
//          a stream reads channel << 9 | j mod 512; with unit_ns = the instant
//          period on the timer path, every conversion of instant k reads k mod 512.
//   fixed  channel c reads values[c] (12-bit counts).
const AINSEL_SHIFT = 12;
const AINSEL_MASK = 7;
const RROBIN_SHIFT = 16;
const RROBIN_MASK = 0x1f;
const CHANNELS = 5;
const CS_ERR_STICKY = 1 << 10;
const CS_ERR = 1 << 9;
const CS_START_MANY = 1 << 3;
const FCS_OVER = 1 << 11;
const FCS_ERR = 1 << 2;
const FCS_SHIFT = 1 << 1;
const FCS_EN = 1 << 0;
const FIFO_ERR = 1 << 15;

export function fixAinsel(adc) {
  Object.defineProperty(adc, 'activeChannel', {
    configurable: true,
    get() {
      return (this.cs >> AINSEL_SHIFT) & AINSEL_MASK;
    },
    set(channel) {
      this.cs = (this.cs & ~(AINSEL_MASK << AINSEL_SHIFT)) | ((channel & AINSEL_MASK) << AINSEL_SHIFT);
    },
  });
}

export function fixRoundRobin(adc) {
  // rp2040js's completeADCRead, unchanged but for the next-channel walk: the
  // next enabled channel above the current one, wrapping from 4 to 0
  adc.completeADCRead = function (value, error) {
    this.busy = false;
    this.result = value;
    if (error) this.cs |= CS_ERR_STICKY | CS_ERR;
    else this.cs &= ~CS_ERR;
    if (this.fcs & FCS_EN) {
      if (this.fifo.full) {
        this.fcs |= FCS_OVER;
      } else {
        value &= 0xfff;
        if (this.fcs & FCS_SHIFT) value >>= 4;
        if (error && this.fcs & FCS_ERR) value |= FIFO_ERR;
        this.fifo.push(value);
        this.updateDMA();
        this.checkInterrupts();
      }
    }
    const round = (this.cs >> RROBIN_SHIFT) & RROBIN_MASK;
    if (round) {
      let channel = this.activeChannel;
      for (let i = 0; i < CHANNELS; i++) {
        channel = (channel + 1) % CHANNELS;
        if (round & (1 << channel)) break;
      }
      this.activeChannel = channel;
    }
    if (this.cs & CS_START_MANY) {
      const clockMHZ = 48;
      const sampleTicks = clockMHZ * this.sampleTime;
      if (this.divider > sampleTicks) {
        this.multiShotAlarm.schedule(((this.divider - sampleTicks) / clockMHZ) * 1000);
      } else {
        this.startADCRead();
      }
    }
  };
}

export class AdcModel {
  constructor() {
    this.mode = 'code';
    this.unitNs = 1000;
    this.originSpec = 'first';
    this.origin = null; // ns, once known
    this.values = [0, 0, 0, 0, 0];
    this.conversions = 0;
  }

  set(opts) {
    if (opts.mode !== undefined) {
      if (opts.mode !== 'code' && opts.mode !== 'fixed') throw new Error(`adc mode ${opts.mode}: code or fixed`);
      this.mode = opts.mode;
    }
    if (opts.unit_ns !== undefined) {
      if (!(opts.unit_ns > 0)) throw new Error('unit_ns must be > 0');
      this.unitNs = opts.unit_ns;
    }
    if (opts.origin !== undefined) this.originSpec = opts.origin;
    if (opts.values !== undefined) this.values = opts.values.map((v) => v & 0xfff);
    this.origin = this.originSpec === 'first' ? null : Number(this.originSpec);
    this.conversions = 0;
    return this.state();
  }

  state() {
    return { mode: this.mode, unit_ns: this.unitNs, origin_ns: this.origin, conversions: this.conversions, values: this.values };
  }

  value(channel, nowNs) {
    this.conversions++;
    if (this.mode === 'fixed') return this.values[channel] ?? 0;
    if (this.origin === null) this.origin = nowNs;
    const k = Math.round((nowNs - this.origin) / this.unitNs);
    return ((channel & 7) << 9) | (((k % 512) + 512) % 512);
  }

  /** Make the chip's ADC answer every conversion from this model. */
  attach(chip) {
    const adc = chip.adc;
    adc.onADCRead = (channel) => {
      adc.currentChannel = channel;
      adc.channelValues[channel] = this.value(channel, chip.clock.nanos);
      adc.sampleAlarm.schedule(adc.sampleTime * 1000);
    };
  }
}
