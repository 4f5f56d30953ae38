// Gap 8: rp2040js raises an SPI's DMA requests whenever its FIFOs allow, whatever SSPDMACR
// says. The PL022 (RP2040 datasheet 4.4) asserts TX DREQ only with TXDMAE set and RX DREQ
// only with RXDMAE set, so firmware can hold an armed DMA channel off the FIFOs while it
// talks to the device with blocking transfers (the ADS1299 driver sends START so, with its
// receive DMA already waiting) and let it go with one register write. Handled here: each
// SPI's requests follow SSPDMACR, re-evaluated when it is written.
const SSPDMACR = 0x024;
const TXDMAE = 1 << 1;
const RXDMAE = 1 << 0;

export function gateSpiDreq(chip) {
  for (const spi of chip.spi) {
    const { dma } = chip;
    spi.updateDMATx = function () {
      if (this.dmaControl & TXDMAE && !this.txFIFO.full) dma.setDREQ(this.dreq.tx);
      else dma.clearDREQ(this.dreq.tx);
    };
    spi.updateDMARx = function () {
      if (this.dmaControl & RXDMAE && !this.rxFIFO.empty) dma.setDREQ(this.dreq.rx);
      else dma.clearDREQ(this.dreq.rx);
    };
    const write = spi.writeUint32.bind(spi);
    spi.writeUint32 = (offset, value) => {
      write(offset, value);
      if (offset === SSPDMACR) {
        spi.updateDMATx();
        spi.updateDMARx();
      }
    };
    spi.updateDMATx();
    spi.updateDMARx();
  }
}
