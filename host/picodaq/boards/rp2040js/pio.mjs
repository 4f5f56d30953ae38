// Gap 7: rp2040js steps PIO state machines in batches of 1000 instructions on the host's
// setTimeout, unrelated to the emulated clock: a program that waits for a GPIO (the ADS1299's
// DRDY) runs at most once per runner slice, milliseconds of the chip's time late, so DMA it
// paces misses data. Handled here: every enabled state machine executes one instruction per
// tick of its own clock, clk_sys / CLKDIV, on the emulated clock (an alarm per tick), as on
// the chip. A state machine stalled on `wait ... pin` cannot change state until a GPIO input
// changes, so it stops ticking then and is woken, at its next tick, by any input change: the
// same behaviour, without an alarm per tick while it waits.
const CYCLE_NS = 8; // 125 MHz
const WAIT_PIN = 1; // rp2040js's WaitType.Pin

export function clockPio(chip) {
  const parked = new Set();
  const machines = [];
  for (const pio of chip.pio) {
    for (const sm of pio.machines) {
      const m = { pio, sm, alarm: null, scheduled: false };
      m.alarm = chip.clock.createAlarm(() => tick(m));
      machines.push(m);
    }
    // no batches on the host's timers: run() (called when a CTRL write enables a state
    // machine) only marks the block running; every register write re-checks which
    // state machines tick
    pio.run = () => {
      pio.stopped = false;
    };
    const write = pio.writeUint32.bind(pio);
    pio.writeUint32 = (offset, value) => {
      write(offset, value);
      for (const m of machines) {
        if (m.pio !== pio) continue;
        if (m.sm.enabled && !pio.stopped) schedule(m);
        else cancel(m);
      }
    };
  }

  function period(sm) {
    return (sm.clockDivInt + sm.clockDivFrac / 256) * CYCLE_NS;
  }

  function schedule(m) {
    if (m.scheduled || !m.sm.enabled) return;
    parked.delete(m);
    m.scheduled = true;
    m.alarm.schedule(period(m.sm));
  }

  function cancel(m) {
    m.scheduled = false;
    parked.delete(m);
    m.alarm.cancel();
  }

  function tick(m) {
    m.scheduled = false;
    const { pio, sm } = m;
    if (!sm.enabled || pio.stopped) return;
    sm.step();
    pio.checkChangedPins();
    if (sm.waiting && sm.waitType === WAIT_PIN) {
      parked.add(m); // nothing changes until an input does
      return;
    }
    schedule(m);
  }

  // any GPIO input change wakes the parked state machines at their next tick
  for (const pin of chip.gpio) {
    const set = pin.setInputValue.bind(pin);
    pin.setInputValue = (value) => {
      set(value);
      if (parked.size) for (const m of [...parked]) schedule(m);
    };
  }
}
