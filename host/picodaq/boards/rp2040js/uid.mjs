// Gap 5 of rp2040js 1.4.1: the flash chip's unique ID is not modelled, so every
// emulated board reads 0000000000000000 from machine.unique_id().
//
// pico-sdk reads it once at boot (flash_get_unique_id, from RAM): it forces the
// QSPI chip select low through IO_QSPI GPIO_QSPI_SS_CTRL (OUTOVER = 2), clocks
// out 0x4B, four dummy bytes and eight more through the SSI data register, and
// takes the ID from the last eight bytes it reads back. Here IO_QSPI (an
// unimplemented peripheral in rp2040js) tracks the chip select, and the SSI's
// data register answers a 0x4B transaction with this board's eight bytes.
const IO_QSPI_SS_CTRL = 0x0c; // GPIO_QSPI_SS_CTRL: io[1].ctrl
const OUTOVER_SHIFT = 8;
const OUTOVER_LOW = 2;
const SSI_DR0 = 0x60;
const CMD_READ_UNIQUE_ID = 0x4b;
const DUMMY = 4;

export function serveUniqueId(chip, id /* Uint8Array(8) */) {
  const ssi = chip.peripherals[0x18000];
  const ioQspi = chip.peripherals[0x40018];
  const rx = []; // bytes the flash chip clocks back
  let selected = false;
  let n = 0; // bytes clocked in this transaction
  let cmd = -1;

  const ioWrite = ioQspi.writeUint32.bind(ioQspi);
  ioQspi.writeUint32 = (offset, value) => {
    if (offset === IO_QSPI_SS_CTRL) {
      const low = ((value >>> OUTOVER_SHIFT) & 3) === OUTOVER_LOW;
      if (low && !selected) {
        n = 0;
        cmd = -1;
        rx.length = 0;
      }
      selected = low;
      return;
    }
    ioWrite(offset, value);
  };
  const ioRead = ioQspi.readUint32.bind(ioQspi);
  ioQspi.readUint32 = (offset) => (offset === IO_QSPI_SS_CTRL ? (selected ? OUTOVER_LOW << OUTOVER_SHIFT : 3 << OUTOVER_SHIFT) : ioRead(offset));

  const ssiWrite = ssi.writeUint32.bind(ssi);
  ssi.writeUint32 = (offset, value) => {
    if (offset === SSI_DR0 && selected) {
      if (n === 0) cmd = value & 0xff;
      const k = n - 1 - DUMMY;
      rx.push(cmd === CMD_READ_UNIQUE_ID && k >= 0 && k < 8 ? id[k] : 0);
      n++;
    }
    ssiWrite(offset, value);
  };
  const ssiRead = ssi.readUint32.bind(ssi);
  ssi.readUint32 = (offset) => (offset === SSI_DR0 && rx.length ? rx.shift() : ssiRead(offset));
}

export function parseId(hex) {
  if (!/^[0-9a-fA-F]{16}$/.test(hex)) throw new Error(`--uid wants 16 hex digits, got ${hex}`);
  return Uint8Array.from(hex.match(/../g).map((b) => parseInt(b, 16)));
}
