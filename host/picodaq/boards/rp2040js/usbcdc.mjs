// The chip's USB CDC, as the host side of the USB link: enumeration by rp2040js's
// USBCDC helper, and flow control in both directions.
//
// Host to device (gap 1 of rp2040js 1.4.1): USBCDC keeps host bytes in a 512-byte
// FIFO and drops the rest, with no flow control, so a `picodaq flash` upload
// loses bytes. Handled: bytes go to the device only when it arms its CDC OUT
// endpoint (onEndpointRead), at most the size it asked for; the rest waits in a
// queue, as a USB host's pending transfer does. Endpoint 0 is left to USBCDC
// (intercepting it too makes the SDK panic "Can't continue xfer on inactive ep 00").
//
// Device to host: rp2040js completes every IN transfer at once. A real host
// that stops reading stops taking IN packets, so the firmware's CDC buffer fills
// and its writes block, then return short. Here an IN transfer on the CDC
// endpoint is completed (its buffer handed back to the device) only while the
// consumer says it can take more (canSend()); otherwise the completion waits
// until release() is called.
const CDC_PACKET = 64;

export class CdcLink {
  /**
   * @param rp       the rp2040js module namespace
   * @param chip     the RP2040
   * @param opts     { flow: bool, onData(Uint8Array), canSend(): bool, onConnected() }
   */
  constructor(rp, chip, opts) {
    this.chip = chip;
    this.opts = opts;
    this.cdc = new rp.USBCDC(chip.usbCtrl);
    this.queue = []; // host bytes not yet handed over (Uint8Array chunks)
    this.queued = 0;
    this.armed = 0; // size of the OUT transfer the device is waiting on, 0 if none
    this.heldIn = []; // IN completions held back while the consumer is full
    this.connected = false;
    this.cdc.onDeviceConnected = () => {
      this.connected = true;
      opts.onConnected?.();
    };
    this.cdc.onSerialData = (buf) => opts.onData(buf);
    const usb = chip.usbCtrl;
    if (opts.flow) {
      const stockRead = usb.onEndpointRead;
      usb.onEndpointRead = (endpoint, size) => {
        if (endpoint !== this.cdc.outEndpoint || endpoint <= 0) return stockRead(endpoint, size);
        this.armed = size;
        this.feed();
      };
    }
    const stockReady = usb.indicateBufferReady.bind(usb);
    usb.indicateBufferReady = (endpoint, out) => {
      if (!out && endpoint > 0 && endpoint === this.cdc.inEndpoint && !opts.canSend()) {
        this.heldIn.push(endpoint);
        return;
      }
      stockReady(endpoint, out);
    };
    this.stockReady = stockReady;
  }

  /** Bytes from the host. */
  write(data) {
    if (!this.opts.flow) {
      for (const b of data) this.cdc.sendSerialByte(b); // rp2040js as is: 512 bytes, then dropped
      return;
    }
    if (!data.length) return;
    this.queue.push(data);
    this.queued += data.length;
    this.feed();
  }

  feed() {
    if (!this.armed || !this.queued || !this.connected) return;
    const n = Math.min(this.armed, this.queued, CDC_PACKET);
    const out = new Uint8Array(n);
    let k = 0;
    while (k < n) {
      const head = this.queue[0];
      const take = Math.min(head.length, n - k);
      out.set(head.subarray(0, take), k);
      k += take;
      if (take === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(take);
    }
    this.queued -= n;
    this.armed = 0;
    this.chip.usbCtrl.endpointReadDone(this.cdc.outEndpoint, out);
  }

  /** The consumer drained: complete the IN transfers held back. */
  release() {
    while (this.heldIn.length && this.opts.canSend()) this.stockReady(this.heldIn.shift(), false);
  }
}
