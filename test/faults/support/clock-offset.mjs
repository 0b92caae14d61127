// Loaded with `node --import` into a service process: shifts the host clock the process sees
// (Date.now() and new Date()) by CLOCK_OFFSET_MS, as a host whose clock is wrong would.
const offset = Number(process.env.CLOCK_OFFSET_MS ?? 0);
const RealDate = Date;
const realNow = RealDate.now.bind(RealDate);

class ShiftedDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(realNow() + offset);
    else super(...args);
  }

  static now() {
    return realNow() + offset;
  }
}

globalThis.Date = ShiftedDate;
