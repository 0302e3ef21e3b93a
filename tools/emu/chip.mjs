// The emulated Pico: MicroPython's rp2 port running on rp2040js, with the pump's
// peripherals modelled at the pins. Started by tools/emu/rig.py, which owns the
// plant model, the pseudo-terminal and the control channel.
//
// Talks to rig.py over stdin/stdout, one JSON object per line:
//   chip -> rig  {"t":"tx","d":b64}            bytes the Pico sent on USB CDC
//                {"t":"ev","ev":[[ns,pin,lvl]..]}  STEP/DIR/EN edges; the chip waits for "go"
//                {"t":"hx","ns":N}             an HX711 conversion is due; waits for "hx"
//                {"t":"boot","cause":..}       the chip (re)started
//                {"t":"r","id":N,...}          answer to a query
//   rig -> chip  {"t":"rx","d":b64}            bytes from the host to the Pico
//                {"t":"go"} / {"t":"hx","raw":N}  answers to the two above
//                {"t":"drive","pin":N,"v":0|1|null}   an external driver on a pin (null: released)
//                {"t":"key","pin":N,"ms":M}    pulled low for M ms of emulated time (M<0: held)
//                {"t":"q","id":N,"what":...}   oled | heap | stats | mark | wait
//                {"t":"power","hold":[pins]}   power cut and power-up (pins held low at power-up)
//                {"t":"battery","mv":N}        VSYS in millivolts (ADC3 reads VSYS/3)
//                {"t":"quit"}
// Facts about rp2040js 1.4.1 this file deals with (each marked FACT below): the boot ROM's
// flash routines are done here on the flash array; PIO is clocked by emulated time; an
// input reads back what the chip drives on the pin; the USB host answers a bulk OUT
// transfer only when it has data; watchdog and machine.reset() restart the chip keeping
// the flash.

import fs from 'node:fs';
import { BasePeripheral, ConsoleLogger, LogLevel, RP2040, USBCDC } from 'rp2040js';

const cfg = JSON.parse(process.argv[2] || '{}');
// rp2040js warns on every access to the inter-core FIFO, which MicroPython polls around
// flash writes; only the first of each is shown.
const warned = new Set();
const consoleWarn = console.warn;
console.warn = (msg, ...rest) => {
  const key = String(msg).replace(/[0-9a-f]+$/, '');
  if (warned.has(key) && !cfg.verbose) return;
  warned.add(key);
  consoleWarn('chip:', msg, ...rest);
};
const NS_PER_CYCLE = 8; // 125 MHz
const FLASH_BYTES = 2 * 1024 * 1024;
const SLICE_NS = 2_000_000; // emulated time run between two looks at the rig's messages
const PIO_WAIT_STEP_NS = 50_000; // CPU asleep while a state machine runs: PIO time steps

// --- output to the rig ----------------------------------------------------------------
let outBuf = [];
function send(obj) {
  outBuf.push(JSON.stringify(obj));
}
function flushOut() {
  if (outBuf.length) {
    process.stdout.write(outBuf.join('\n') + '\n');
    outBuf = [];
  }
}
function log(msg) {
  process.stderr.write('chip: ' + msg + '\n');
}

// --- flash (kept across resets and power cuts) -------------------------------------------
const flash = new Uint8Array(16 * 1024 * 1024);
flash.fill(0xff);
function loadUf2(path) {
  const data = fs.readFileSync(path);
  let blocks = 0;
  for (let off = 0; off + 512 <= data.length; off += 512) {
    const magic0 = data.readUInt32LE(off);
    const magic1 = data.readUInt32LE(off + 4);
    const magicEnd = data.readUInt32LE(off + 508);
    if (magic0 !== 0x0a324655 || magic1 !== 0x9e5d5157 || magicEnd !== 0x0ab16f30) {
      throw new Error(`${path}: block ${off / 512} is not a UF2 block`);
    }
    const flags = data.readUInt32LE(off + 8);
    if (flags & 1) continue; // not for the main flash
    const addr = data.readUInt32LE(off + 12);
    const size = data.readUInt32LE(off + 16);
    if (addr < 0x10000000 || addr + size > 0x10000000 + FLASH_BYTES || size > 476) {
      throw new Error(`${path}: block ${off / 512} targets 0x${addr.toString(16)}, outside the flash`);
    }
    flash.set(data.subarray(off + 32, off + 32 + size), addr - 0x10000000);
    blocks++;
  }
  if (!blocks) throw new Error(`${path}: no UF2 blocks for the flash`);
  return blocks;
}
if (cfg.flashImage && fs.existsSync(cfg.flashImage)) {
  flash.set(fs.readFileSync(cfg.flashImage).subarray(0, FLASH_BYTES));
}
if (cfg.uf2) loadUf2(cfg.uf2);

// --- boot ROM, with its flash routines replaced by breakpoints -----------------------------
// FACT: rp2040js does not model the flash chip's erase and program commands behind the
// SSI, so littlefs could never write. The ROM's own table (halfword pointer at 0x14:
// pairs of a two-letter code and a function address) tells where its routines are; each
// is replaced by a BKPT whose number says which, and the break handler does the work on
// the flash array and returns to the caller.
const bootromWords = new Uint32Array(4096);
{
  const raw = fs.readFileSync(cfg.bootrom);
  if (raw.length !== 16384) throw new Error(`${cfg.bootrom}: a boot ROM is 16384 bytes`);
  for (let i = 0; i < 4096; i++) bootromWords[i] = raw.readUInt32LE(i * 4);
}
function romHalf(addr) {
  return (bootromWords[addr >> 2] >>> ((addr & 2) * 8)) & 0xffff;
}
function setRomHalf(addr, value) {
  const shift = (addr & 2) * 8;
  const w = bootromWords[addr >> 2];
  bootromWords[addr >> 2] = ((w & ~(0xffff << shift)) | (value << shift)) >>> 0;
}
const ROM_ROUTINES = ['IF', 'EX', 'RE', 'RP', 'FC', 'CX'];
{
  let p = romHalf(0x14);
  const found = {};
  for (let guard = 0; guard < 64; guard++, p += 4) {
    const code = romHalf(p);
    if (!code) break;
    const name = String.fromCharCode(code & 0xff, code >> 8);
    found[name] = romHalf(p + 2) & ~1;
  }
  ROM_ROUTINES.forEach((name, i) => {
    if (found[name] === undefined) throw new Error(`boot ROM has no ${name} routine`);
    setRomHalf(found[name], 0xbe00 | (0x40 + i)); // BKPT #0x40+i
  });
}
// Typical times of a 2 MB QSPI NOR flash (W25Q16JV datasheet): the CPU waits them out.
const ERASE_NS_PER_4K = 45_000_000;
const PROGRAM_NS_PER_256 = 400_000;

// --- state kept across resets --------------------------------------------------------------
const EXT = new Map(); // pin -> level driven from outside (0/1); absent: released
const heldAtPowerUp = new Set();
let baseNs = 0; // emulated time before the present chip's clock started
let wall0 = Date.now();
let batteryMv = cfg.batteryMv ?? 4500;
let scratch = new Uint32Array(8);
let mcu = null;
let cdc = null;
let bootCount = 0;
let resets = [];
const pins = cfg.pins || {};
const STEP = pins.step ?? 2;
const DIR = pins.dir ?? 3;
const EN = pins.enable ?? 4;
const HX_DOUT = pins.hx711_dout ?? 6;
const HX_SCK = pins.hx711_sck ?? 7;
const BUZZER = pins.buzzer ?? 15;
const BATTERY_PIN = pins.battery_adc ?? 29;
const REPORTED = new Set([STEP, DIR, EN]);
const KEY_PINS = ['button_up', 'button_down', 'button_ok', 'button_back'].map((k) => pins[k] ?? -1);

// Counters (emulated time in ns since the rig started).
const steps = { rises: 0, forward: 0, backward: 0, whileDisabled: 0, log: [] };
const stats = { instr: 0, busyNs: 0, sleepNs: 0, markNs: 0, markWall: Date.now(), markInstr: 0,
  markBusy: 0, markSleep: 0 };
let heapMark = { minFree: Infinity, maxFree: 0, minLargest: Infinity, maxLargest: 0, bestLargest: 0,
        samples: 0 };

function nowNs() {
  return baseNs + (mcu ? mcu.clock.nanos : 0);
}

// --- syncs with the rig ---------------------------------------------------------------------
let waitingFor = null; // 'go' | 'hx' while the chip is paused for the rig
let stopSlice = false;
let pinEvents = [];
let eventNs = -1; // time stamp for pin changes made by a PIO state machine (-1: the clock)

// --- chip reset register (VREG_AND_CHIP_RESET), which rp2040js leaves unimplemented ---------
class ChipReset extends BasePeripheral {
  constructor(rp2040, chipReset) {
    super(rp2040, 'VREG_AND_CHIP_RESET');
    this.vreg = 0xb1;
    this.bod = 0x91;
    this.chipReset = chipReset;
  }
  readUint32(offset) {
    if (offset === 0) return this.vreg;
    if (offset === 4) return this.bod;
    if (offset === 8) return this.chipReset;
    return 0;
  }
  writeUint32(offset, value) {
    if (offset === 0) this.vreg = value;
    else if (offset === 4) this.bod = value;
    else if (offset === 8) this.chipReset = (this.chipReset & ~0x01000000) | (value & 0x01000000);
  }
}

// --- the chip -----------------------------------------------------------------------------
// cause: 'power' (power-on), 'watchdog' (timeout) or 'force' (machine.reset(), trigger)
function bootChip(cause) {
  if (mcu) baseNs += mcu.clock.nanos;
  mcu = new RP2040();
  mcu.logger = new ConsoleLogger(cfg.verbose ? LogLevel.Warn : LogLevel.Error);
  mcu.loadBootrom(bootromWords);
  // FACT: RP2040.reset() fills its flash with 0xff: the chip gets the kept array instead.
  mcu.flash = flash;
  mcu.flash16 = new Uint16Array(flash.buffer);
  mcu.flashView = new DataView(flash.buffer);
  bootCount++;
  resets.push({ ns: nowNs(), cause });

  const wd = mcu.peripherals[0x40058];
  // CHIP_RESET.HAD_POR after a power-up; the watchdog's REASON after its own resets.
  mcu.peripherals[0x40064] = new ChipReset(mcu, cause === 'power' ? 1 << 8 : 0);
  if (cause === 'power') {
    scratch = new Uint32Array(8);
  } else {
    wd.reason = cause === 'watchdog' ? 1 : 2;
    wd.scratchData.set(scratch);
  }
  // FACT: a watchdog timeout in rp2040js 1.4.1 only logs (and its periodic alarm keeps
  // firing): here it stops the timer and restarts the chip after the instruction.
  wd.onWatchdogTrigger = () => {
    const reason = wd.reason;
    wd.timer.enable = false;
    wd.alarm.enable = false;
    scratch = new Uint32Array(wd.scratchData);
    pendingReset = reason & 1 ? 'watchdog' : 'force';
    stopSlice = true;
  };

  mcu.onBreak = (code) => romRoutine(code);
  if (cfg.profile) {
    const entry = mcu.core.exceptionEntry.bind(mcu.core);
    mcu.core.exceptionEntry = (n) => {
      profile.exc[n] = (profile.exc[n] || 0) + 1;
      entry(n);
    };
  }

  // FACT: PIO runs on setTimeout in rp2040js; here it runs on emulated time (runPio).
  smTime = [];
  for (const pio of mcu.pio) {
    pio.run = () => {};
    smTime.push([0, 0, 0, 0]);
  }

  setupPins();
  setupUsb();
  setupOled();
  setupAdc();
  setupHx711();
  setupHeapSampler();
  mcu.core.PC = 0x10000000; // boot stage 2 in flash, as the ROM would start it
  send({ t: 'boot', cause, ns: nowNs(), n: bootCount });
}

let pendingReset = null;
const profile = { exc: {}, pc: {} };

function romRoutine(code) {
  const core = mcu.core;
  const r = core.registers;
  const name = ROM_ROUTINES[code - 0x40];
  if (name === undefined) {
    log(`breakpoint ${code} at 0x${(core.PC - 2).toString(16)}: chip halted`);
    pendingReset = 'halt';
    stopSlice = true;
    return;
  }
  if (name === 'RE') {
    const addr = r[0] >>> 0;
    const count = r[1] >>> 0;
    if (addr + count <= FLASH_BYTES) flash.fill(0xff, addr, addr + count);
    mcu.clock.tick(Math.ceil(count / 4096) * ERASE_NS_PER_4K);
  } else if (name === 'RP') {
    const addr = r[0] >>> 0;
    const src = r[1] >>> 0;
    const count = r[2] >>> 0;
    if (addr + count <= FLASH_BYTES) {
      for (let i = 0; i < count; i++) flash[addr + i] &= mcu.readUint8(src + i); // NOR: 1 -> 0 only
    }
    mcu.clock.tick(Math.ceil(count / 256) * PROGRAM_NS_PER_256);
  }
  core.PC = core.LR & ~1;
}

// --- pins ---------------------------------------------------------------------------------
// FACT: rp2040js never sets an input from the pin's own output or its pulls. Here every
// pin reads: what the chip drives when its output is on; else an outside driver (a key,
// the end stop, the HX711); else its pull-up or pull-down; else it keeps its level.
const level = new Int8Array(30);
function refreshPin(i) {
  const pin = mcu.gpio[i];
  let v;
  if (pin.outputEnable) v = pin.outputValue ? 1 : 0;
  else if (EXT.has(i)) v = EXT.get(i);
  else if (pin.pullupEnabled && !pin.pulldownEnabled) v = 1;
  else if (pin.pulldownEnabled && !pin.pullupEnabled) v = 0;
  else v = level[i];
  if (v !== level[i]) {
    level[i] = v;
    pin.setInputValue(!!v);
  }
}
let outLevel = new Int8Array(30);
function setupPins() {
  level.fill(-1);
  outLevel.fill(-1);
  for (let i = 0; i < 30; i++) {
    const pin = mcu.gpio[i];
    pin.addListener(() => onPinChange(i));
    refreshPin(i);
  }
  for (const i of heldAtPowerUp) {
    EXT.set(i, 0);
    refreshPin(i);
  }
}
function onPinChange(i) {
  refreshPin(i);
  const pin = mcu.gpio[i];
  const out = pin.outputEnable ? (pin.outputValue ? 1 : 0) : -1;
  if (out === outLevel[i]) return;
  const was = outLevel[i];
  outLevel[i] = out;
  const ns = eventNs >= 0 ? eventNs : nowNs();
  if (REPORTED.has(i)) {
    pinEvents.push([ns, i, out]);
    if (i === STEP && out === 1 && was === 0) countStep(ns);
  }
  if (i === HX_SCK) hxSck(out === 1, ns);
}
function countStep(ns) {
  steps.rises++;
  const en = outLevel[EN];
  const enabled = (cfg.enableActiveLow ?? true) ? en === 0 : en === 1;
  const forward = outLevel[DIR] === (cfg.dirForwardLevel ?? 1);
  if (!enabled) steps.whileDisabled++;
  else if (forward) steps.forward++;
  else steps.backward++;
  steps.log.push([ns, enabled ? (forward ? 1 : -1) : 0]);
  if (steps.log.length > 50000) steps.log.splice(0, 10000);
}
function drive(pinIndex, v) {
  if (v === null || v === undefined) EXT.delete(pinIndex);
  else EXT.set(pinIndex, v ? 1 : 0);
  if (mcu) refreshPin(pinIndex);
}

// --- PIO on emulated time ---------------------------------------------------------------------
let smTime = [];
const JMP_YDEC = 0b100;
const JMP_XDEC = 0b010;
function runPio(targetNs) {
  const local = targetNs - baseNs;
  let active = false;
  for (let p = 0; p < 2; p++) {
    const pio = mcu.pio[p];
    for (let s = 0; s < 4; s++) {
      const sm = pio.machines[s];
      const times = smTime[p];
      if (!sm.enabled) {
        times[s] = local;
        continue;
      }
      const div = sm.clockDivInt + sm.clockDivFrac / 256 || 65536;
      const period = NS_PER_CYCLE * div;
      let t = times[s];
      if (t < local - 1e9) t = local; // never replay more than a second (just enabled)
      while (t + period <= local) {
        if (sm.waiting) {
          sm.checkWait();
          if (sm.waiting) {
            // Stalled (an empty FIFO, a pin, an IRQ): nothing changes until the CPU acts.
            t = local;
            break;
          }
        }
        const op = pio.instructions[sm.pc];
        // A delay loop `jmp(y_dec, self)` or `jmp(x_dec, self)`: its iterations change
        // only the counter and the time, so they are skipped arithmetically.
        if (op >> 13 === 0 && (op & 0x1f) === sm.pc) {
          const cond = (op >> 5) & 7;
          const counter = cond === JMP_YDEC ? sm.y : cond === JMP_XDEC ? sm.x : 0;
          if ((cond === JMP_YDEC || cond === JMP_XDEC) && counter > 1 && !sm.execValid) {
            const delay = (op >> 8) & 0x1f & ((1 << (5 - sm.sidesetCount)) - 1);
            const per = (1 + delay) * period;
            const n = Math.min(counter - 1, Math.floor((local - t) / per));
            if (n > 0) {
              if (cond === JMP_YDEC) sm.y = (sm.y - n) >>> 0;
              else sm.x = (sm.x - n) >>> 0;
              t += n * per;
              continue;
            }
          }
        }
        const before = sm.cycles;
        eventNs = baseNs + t;
        sm.step();
        pio.checkChangedPins();
        eventNs = -1;
        const used = Math.max(1, sm.cycles - before);
        t += used * period;
      }
      times[s] = t;
      if (!(sm.waiting && sm.waitType === 3)) active = true; // not stalled on an empty TX FIFO
    }
  }
  return active;
}

// --- USB CDC host ---------------------------------------------------------------------------
const hostQueue = []; // Uint8Arrays the host sent, not yet taken by the Pico
let pendingOut = null; // the Pico's OUT buffer waiting for data: {ep, size}
let txBytes = [];
function setupUsb() {
  cdc = new USBCDC(mcu.usbCtrl);
  pendingOut = null;
  cdc.onSerialData = (buf) => {
    for (const b of buf) txBytes.push(b);
  };
  // FACT: rp2040js's CDC host answers every OUT buffer at once, with zero bytes when it
  // has none, so the Pico re-arms it every 10 us and never sleeps. Here the answer waits
  // for data.
  mcu.usbCtrl.onEndpointRead = (ep, size) => {
    if (ep !== cdc.outEndpoint) return;
    pendingOut = { ep, size };
    feedUsb();
  };
}
function feedUsb() {
  if (!pendingOut || !hostQueue.length || !cdc.initialized) return;
  const { ep, size } = pendingOut;
  const out = new Uint8Array(size);
  let n = 0;
  while (n < size && hostQueue.length) {
    const head = hostQueue[0];
    const take = Math.min(size - n, head.length);
    out.set(head.subarray(0, take), n);
    n += take;
    if (take === head.length) hostQueue.shift();
    else hostQueue[0] = head.subarray(take);
  }
  pendingOut = null;
  mcu.usbCtrl.endpointReadDone(ep, out.subarray(0, n));
}

// --- SSD1306 on I2C0 ---------------------------------------------------------------------
const OLED_ADDR = cfg.oledAddr ?? 0x3c;
const oled = {
  ram: new Uint8Array(1024), on: false, invert: false, contrast: 0x7f, mode: 2,
  colStart: 0, colEnd: 127, pageStart: 0, pageEnd: 7, col: 0, page: 0,
  writes: 0, frames: 0, segRemap: false, comReverse: false,
};
const CMD_ARGS = { 0x20: 1, 0x21: 2, 0x22: 2, 0x81: 1, 0xa8: 1, 0xd3: 1, 0xda: 1, 0xd5: 1,
  0xd9: 1, 0xdb: 1, 0x8d: 1, 0x26: 6, 0x27: 6, 0x29: 5, 0x2a: 5, 0xa3: 2 };
function oledCommand(bytes) {
  const c = bytes[0];
  if (c === 0xae) oled.on = false;
  else if (c === 0xaf) oled.on = true;
  else if (c === 0xa6) oled.invert = false;
  else if (c === 0xa7) oled.invert = true;
  else if (c === 0xa0) oled.segRemap = false;
  else if (c === 0xa1) oled.segRemap = true;
  else if (c === 0xc0) oled.comReverse = false;
  else if (c === 0xc8) oled.comReverse = true;
  else if (c === 0x81) oled.contrast = bytes[1];
  else if (c === 0x20) oled.mode = bytes[1] & 3;
  else if (c === 0x21) {
    oled.colStart = bytes[1] & 127; oled.colEnd = bytes[2] & 127; oled.col = oled.colStart;
  } else if (c === 0x22) {
    oled.pageStart = bytes[1] & 7; oled.pageEnd = bytes[2] & 7; oled.page = oled.pageStart;
  } else if (c >= 0xb0 && c <= 0xb7) oled.page = c & 7;
  else if (c <= 0x0f) oled.col = (oled.col & 0xf0) | c;
  else if (c >= 0x10 && c <= 0x1f) oled.col = (oled.col & 0x0f) | ((c & 0x0f) << 4);
}
function oledData(b) {
  oled.ram[oled.page * 128 + oled.col] = b;
  oled.writes++;
  if (oled.mode === 2) {
    oled.col = (oled.col + 1) & 127;
    return;
  }
  if (oled.mode === 0) {
    if (oled.col >= oled.colEnd) {
      oled.col = oled.colStart;
      if (oled.page >= oled.pageEnd) {
        oled.page = oled.pageStart;
        oled.frames++;
      } else oled.page++;
    } else oled.col++;
  } else {
    if (oled.page >= oled.pageEnd) {
      oled.page = oled.pageStart;
      if (oled.col >= oled.colEnd) {
        oled.col = oled.colStart;
        oled.frames++;
      } else oled.col++;
    } else oled.page++;
  }
}
function setupOled() {
  const i2c = mcu.i2c[0];
  let target = false;
  let control = null; // the control byte in force: null until one arrives
  let cmd = [];
  i2c.onConnect = (addr, mode) => {
    target = addr === OLED_ADDR && mode === 0; // writes only (the SSD1306 has no reads on I2C)
    control = null;
    cmd = [];
    i2c.completeConnect(target);
  };
  i2c.onWriteByte = (b) => {
    if (!target) return i2c.completeWrite(false);
    if (control === null) {
      control = b;
    } else if (control & 0x40) {
      oledData(b);
      if (control & 0x80) control = null;
    } else {
      cmd.push(b);
      const need = (CMD_ARGS[cmd[0]] ?? 0) + 1;
      if (cmd.length >= need) {
        oledCommand(cmd);
        cmd = [];
      }
      if (control & 0x80 && !cmd.length) control = null;
    }
    i2c.completeWrite(true);
  };
  i2c.onReadByte = () => i2c.completeRead(0xff);
  i2c.onStop = () => i2c.completeStop();
}

// --- battery on ADC3 (GP29, VSYS/3 on the Pico board) --------------------------------------
function setupAdc() {
  const channel = BATTERY_PIN - 26;
  mcu.adc.onADCRead = (ch) => {
    mcu.adc.currentChannel = ch;
    if (ch === channel) {
      mcu.adc.channelValues[ch] = Math.max(0, Math.min(4095, Math.round((batteryMv / 3) * 4096 / 3300)));
    } else if (ch === 4) {
      mcu.adc.channelValues[4] = Math.round((0.706 * 4096) / 3.3); // 27 C
    }
    mcu.adc.sampleAlarm.schedule(mcu.adc.sampleTime * 1000);
  };
}

// --- HX711 on DOUT/PD_SCK ----------------------------------------------------------------
// Conversions at a fixed rate; DOUT low when one is ready; each PD_SCK rising edge shifts
// out the next bit (24, MSB first); pulses 25-27 pick the next gain and end the read with
// DOUT high. PD_SCK high for over 60 us powers the chip down; low again powers it up, and
// the first conversion comes after the settling time (4 conversions).
const HX_PERIOD_NS = (cfg.hxPeriodMs ?? 100) * 1_000_000;
const hx = { word: 0, pulses: 0, ready: false, powered: true, sckHighNs: 0, settleUntilNs: 0,
  alarm: null, downAlarm: null, pendingNs: 0, reads: 0 };
function setupHx711() {
  hx.ready = false;
  hx.pulses = 0;
  hx.powered = true;
  hx.settleUntilNs = nowNs() + 4 * HX_PERIOD_NS;
  EXT.set(HX_DOUT, 1);
  refreshPin(HX_DOUT);
  hx.alarm = mcu.clock.createAlarm(hxConversion);
  hx.downAlarm = mcu.clock.createAlarm(() => {
    hx.powered = false;
    hx.ready = false;
    drive(HX_DOUT, 1);
  });
  hx.alarm.schedule(HX_PERIOD_NS);
}
function hxConversion() {
  hx.alarm.schedule(HX_PERIOD_NS);
  // No conversions while PD_SCK is not driven low (the firmware has not set the pins up).
  if (!hx.powered || outLevel[HX_SCK] !== 0 || nowNs() < hx.settleUntilNs) return;
  if (hx.pulses > 0 && hx.pulses < 25) return; // a read in progress: this conversion is lost
  // Ask the rig for the force now; the chip pauses until it answers.
  hx.pendingNs = nowNs();
  waitingFor = 'hx';
  stopSlice = true;
}
function hxAnswer(raw) {
  const clamped = Math.max(-0x800000, Math.min(0x7fffff, raw | 0));
  hx.word = clamped & 0xffffff;
  hx.pulses = 0;
  hx.ready = true;
  drive(HX_DOUT, 0);
}
function hxSck(high, ns) {
  if (high) {
    hx.sckHighNs = ns;
    if (hx.powered) hx.downAlarm.schedule(60_000);
    if (!hx.powered) return;
    hx.pulses++;
    if (hx.ready && hx.pulses <= 24) {
      drive(HX_DOUT, (hx.word >> (24 - hx.pulses)) & 1);
    } else if (hx.pulses === 25) {
      hx.ready = false;
      hx.reads++;
      drive(HX_DOUT, 1);
    } else if (!hx.ready) {
      drive(HX_DOUT, 1);
    }
  } else {
    hx.downAlarm.cancel();
    if (!hx.powered) {
      hx.powered = true;
      hx.pulses = 0;
      hx.settleUntilNs = ns + 4 * HX_PERIOD_NS;
    } else if (hx.pulses >= 25) {
      hx.pulses = 0;
    }
  }
}

// --- MicroPython's GC heap, read from RAM --------------------------------------------------
// gc.c: the allocation table (2 bits per 16-byte block) at the heap's start, then the
// finaliser table (1 bit per block), the pool at the end; as many table bytes as fit.
const HEAP = (() => {
  if (!cfg.heapStart || !cfg.heapEnd) return null;
  const start = Number(cfg.heapStart);
  const end = Number(cfg.heapEnd);
  const total = end - start;
  const atbBytes = Math.floor(((total - 1) * 8) / (8 + 4 + 8 * 4 * 16));
  const blocks = atbBytes * 4;
  return { atb: start - 0x20000000, atbBytes, blocks, pool: end - blocks * 16 };
})();
function readHeap() {
  if (!HEAP) return null;
  const ram = mcu.sram;
  let free = 0;
  let run = 0;
  let largest = 0;
  for (let i = 0; i < HEAP.atbBytes; i++) {
    const b = ram[HEAP.atb + i];
    if (b === 0) {
      free += 4;
      run += 4;
      continue;
    }
    for (let k = 0; k < 4; k++) {
      if (((b >> (2 * k)) & 3) === 0) {
        free++;
        run++;
      } else {
        if (run > largest) largest = run;
        run = 0;
      }
    }
  }
  if (run > largest) largest = run;
  return { free: free * 16, largest: largest * 16, total: HEAP.blocks * 16 };
}
let heapAlarm = null;
function setupHeapSampler() {
  heapAlarm = mcu.clock.createAlarm(() => {
    heapAlarm.schedule(100_000_000);
    const h = readHeap();
    if (!h) return;
    heapMark.samples++;
    heapMark.minFree = Math.min(heapMark.minFree, h.free);
    if (h.free > heapMark.maxFree) {
      heapMark.maxFree = h.free;
      heapMark.bestLargest = h.largest; // the largest block when the most was free
    }
    heapMark.minLargest = Math.min(heapMark.minLargest, h.largest);
    heapMark.maxLargest = Math.max(heapMark.maxLargest, h.largest);
  });
  heapAlarm.schedule(100_000_000);
}

// --- buzzer (PWM slice and channel of its pin) ---------------------------------------------
function buzzer() {
  const slice = (BUZZER >> 1) & 7;
  const ch = mcu.pwm.channels[slice];
  const fn = mcu.gpio[BUZZER].functionSelect;
  const top = ch.top + 1;
  const cc = BUZZER & 1 ? ch.cc >>> 16 : ch.cc & 0xffff;
  const divInt = (ch.div >> 4) & 0xff || 256;
  const div = divInt + (ch.div & 0xf) / 16;
  const on = fn === 4 && !!(ch.csr & 1) && cc > 0;
  return { on, hz: on ? Math.round(mcu.clkSys / div / top) : 0, duty: on ? Math.min(1, cc / top) : 0 };
}
const tones = [];
let lastTone = false;

// --- queries ------------------------------------------------------------------------------
const waits = []; // {id, untilNs}
function answer(q) {
  const base = { t: 'r', id: q.id, ns: nowNs() };
  switch (q.what) {
    case 'oled':
      return { ...base, on: oled.on, invert: oled.invert, contrast: oled.contrast,
        segRemap: oled.segRemap, comReverse: oled.comReverse, writes: oled.writes,
        ram: Buffer.from(oled.ram).toString('base64') };
    case 'heap':
      return { ...base, ...readHeap(), window: { ...heapMark } };
    case 'mark':
      heapMark = { minFree: Infinity, maxFree: 0, minLargest: Infinity, maxLargest: 0, bestLargest: 0,
        samples: 0 };
      stats.markNs = nowNs();
      stats.markWall = Date.now();
      stats.markInstr = stats.instr;
      stats.markBusy = stats.busyNs;
      stats.markSleep = stats.sleepNs;
      return base;
    case 'steps': {
      const since = q.since ?? 0;
      const log = q.log ? steps.log.filter((e) => e[0] >= since) : undefined;
      return { ...base, rises: steps.rises, forward: steps.forward, backward: steps.backward,
        whileDisabled: steps.whileDisabled, log, dir: outLevel[DIR], en: outLevel[EN] };
    }
    case 'stats': {
      const dNs = nowNs() - stats.markNs;
      const dWall = (Date.now() - stats.markWall) / 1000;
      const busy = stats.busyNs - stats.markBusy;
      const sleep = stats.sleepNs - stats.markSleep;
      return { ...base, boots: bootCount, resets, sinceMarkS: dNs / 1e9, wallS: dWall,
        speed: dWall > 0 ? dNs / 1e9 / dWall : 0, instr: stats.instr - stats.markInstr,
        mips: dWall > 0 ? (stats.instr - stats.markInstr) / dWall / 1e6 : 0,
        busy: busy + sleep > 0 ? busy / (busy + sleep) : 0, buzzer: buzzer(), tones: tones.slice(-50),
        hxReads: hx.reads, usbReady: !!(cdc && cdc.initialized), batteryMv,
        keys: [...EXT.entries()] };
    }
    case 'profile': {
      const top = Object.entries(profile.pc).sort((a, b) => b[1] - a[1]).slice(0, 25);
      const out = { ...base, exc: profile.exc, top };
      profile.exc = {};
      profile.pc = {};
      return out;
    }
    case 'flash':
      if (q.path) fs.writeFileSync(q.path, flash.subarray(0, FLASH_BYTES));
      return base;
    default:
      return { ...base, error: `unknown query ${q.what}` };
  }
}

// --- messages from the rig -----------------------------------------------------------------
const keyTimers = [];
function handle(msg) {
  switch (msg.t) {
    case 'rx':
      hostQueue.push(new Uint8Array(Buffer.from(msg.d, 'base64')));
      if (mcu) feedUsb();
      break;
    case 'go':
      if (waitingFor === 'go') waitingFor = null;
      break;
    case 'hx':
      if (waitingFor === 'hx') {
        waitingFor = null;
        hxAnswer(msg.raw);
      }
      break;
    case 'drive':
      drive(msg.pin, msg.v);
      break;
    case 'key': {
      drive(msg.pin, 0);
      if (msg.ms >= 0) keyTimers.push({ pin: msg.pin, untilNs: nowNs() + msg.ms * 1e6 });
      break;
    }
    case 'release':
      drive(msg.pin, null);
      break;
    case 'q':
      if (msg.what === 'wait') waits.push({ id: msg.id, untilNs: nowNs() + msg.ms * 1e6 });
      else send(answer(msg));
      break;
    case 'power':
      heldAtPowerUp.clear();
      for (const p of msg.hold || []) heldAtPowerUp.add(p);
      for (const p of KEY_PINS) EXT.delete(p); // nobody holds a key through a power cut
      pendingReset = 'power';
      stopSlice = true;
      if (msg.offMs) baseNs += msg.offMs * 1e6;
      break;
    case 'battery':
      batteryMv = msg.mv;
      break;
    case 'quit':
      if (cfg.flashImage) fs.writeFileSync(cfg.flashImage, flash.subarray(0, FLASH_BYTES));
      flushOut();
      process.exit(0);
      break;
    default:
      log(`unknown message ${JSON.stringify(msg)}`);
  }
}
let inBuf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  inBuf += chunk;
  let nl;
  while ((nl = inBuf.indexOf('\n')) >= 0) {
    const line = inBuf.slice(0, nl);
    inBuf = inBuf.slice(nl + 1);
    if (line.trim()) handle(JSON.parse(line));
  }
  schedule();
});
process.stdin.on('end', () => process.exit(0));

// --- the run loop ---------------------------------------------------------------------------
let scheduled = false;
function schedule() {
  if (scheduled || waitingFor) return;
  scheduled = true;
  setImmediate(runSlice);
}
const realtime = !!cfg.realtime;
function runSlice() {
  scheduled = false;
  if (waitingFor) return;
  if (pendingReset) {
    const cause = pendingReset;
    pendingReset = null;
    if (cause === 'halt') {
      flushOut();
      return;
    }
    bootChip(cause);
  }
  const core = mcu.core;
  const clock = mcu.clock;
  const endNs = clock.nanos + SLICE_NS;
  stopSlice = false;
  let pioActive = true;
  while (clock.nanos < endNs && !stopSlice) {
    if (core.waiting) {
      let dt = endNs - clock.nanos;
      const next = clock.nextAlarm ? clock.nanosToNextAlarm : dt;
      if (next < dt) dt = Math.max(next, 1);
      if (pioActive && dt > PIO_WAIT_STEP_NS) dt = PIO_WAIT_STEP_NS;
      stats.sleepNs += dt;
      clock.tick(dt);
      pioActive = runPio(nowNs());
    } else {
      const t0 = clock.nanos;
      if (cfg.profile) {
        const region = (core.PC >>> 8).toString(16);
        profile.pc[region] = (profile.pc[region] || 0) + 1;
      }
      // The clock advances by hand between its alarms (what tick() does, without a call).
      let i = 0;
      for (; i < 1024 && !core.waiting && !stopSlice; i++) {
        const dt = core.executeInstruction() * NS_PER_CYCLE;
        const next = clock.nextAlarm;
        if (next !== null && next.nanos <= clock.nanosCounter + dt) clock.tick(dt);
        else clock.nanosCounter += dt;
      }
      stats.instr += i;
      stats.busyNs += clock.nanos - t0;
      pioActive = runPio(nowNs());
    }
  }
  // Keys let go, waits over.
  const now = nowNs();
  for (let i = keyTimers.length - 1; i >= 0; i--) {
    if (keyTimers[i].untilNs <= now) {
      drive(keyTimers[i].pin, null);
      keyTimers.splice(i, 1);
    }
  }
  for (let i = waits.length - 1; i >= 0; i--) {
    if (waits[i].untilNs <= now) {
      send({ t: 'r', id: waits[i].id, ns: now });
      waits.splice(i, 1);
    }
  }
  const tone = buzzer();
  if (tone.on !== lastTone) {
    lastTone = tone.on;
    tones.push([now, tone.hz, tone.duty]);
    if (tones.length > 1000) tones.splice(0, 500);
  }
  if (txBytes.length) {
    send({ t: 'tx', d: Buffer.from(txBytes).toString('base64') });
    txBytes = [];
  }
  feedUsb();
  if (pinEvents.length) {
    send({ t: 'ev', ev: pinEvents });
    pinEvents = [];
    waitingFor = waitingFor || 'go';
    if (waitingFor === 'hx') {
      // Both: the edges first, then the force at the conversion's time.
      send({ t: 'hx', ns: hx.pendingNs });
    }
  } else if (waitingFor === 'hx') {
    send({ t: 'hx', ns: hx.pendingNs });
  }
  flushOut();
  if (waitingFor) return; // resumed by the rig's answer
  if (realtime) {
    const ahead = (nowNs() - stats.markNs) / 1e6 - (Date.now() - stats.markWall);
    if (ahead > 5) {
      scheduled = true;
      setTimeout(runSlice, Math.min(ahead, 50));
      return;
    }
  }
  schedule();
}

bootChip('power');
schedule();
