"""PIO assembler and cycle-exact emulator standing in for MicroPython's `rp2` module."""

import errno

import irq as _irq
import machine
import vclock

# Tests turn this off to check that fast-forwarded delay loops time exactly
# like instruction-by-instruction execution.
FAST_FORWARD = True

_MASK = 0xFFFFFFFF
_SYS_FREQ = 125000000
_INSTR_MEM = 32
# Time inside the emulator counts in 1/32 ns: one 125 MHz system cycle is 8 ns
# and the clock divider has an 8-bit fraction, so cycle = div256 units exactly.
_Q_PER_NS = 32

_JMP, _WAIT, _IN, _OUT, _PUSH, _PULL, _MOV, _IRQ, _SET = range(9)

_STOP_LIMIT = 0
_STOP_VISIBLE = 1
_STOP_STALL = 2
_STALLED = -2
_NEXT = -1


class PIOASMError(Exception):
    """The PIO program cannot be assembled."""


class Deadlock(vclock.ClockError):
    """A FIFO access would block forever."""


# -- assembler -----------------------------------------------------------------


class _Operand:
    def __init__(self, name):
        self.name = name

    def __invert__(self):
        return _MovSource(self, 1)

    def __repr__(self):
        return self.name


class _MovSource:
    """A mov source with an operation: 1 invert, 2 bit-reverse."""

    def __init__(self, operand, op):
        self.name = operand.name
        self.op = op


class _Flag:
    def __init__(self, name, block, cond, clear=False):
        self.name = name
        self.block = block
        self.cond = cond
        self.clear = clear


_OPERANDS = (
    "pins",
    "x",
    "y",
    "null",
    "pindirs",
    "pc",
    "status",
    "isr",
    "osr",
    "exec",
    "not_x",
    "x_dec",
    "not_y",
    "y_dec",
    "x_not_y",
    "pin",
    "not_osre",
    "gpio",
)
_JMP_COND = {"not_x": 1, "x_dec": 2, "not_y": 3, "y_dec": 4, "x_not_y": 5, "pin": 6, "not_osre": 7}
_IN_SRC = {"pins": 0, "x": 1, "y": 2, "null": 3, "isr": 6, "osr": 7}
_OUT_DST = {"pins": 0, "x": 1, "y": 2, "null": 3, "pindirs": 4, "pc": 5, "isr": 6, "exec": 7}
_MOV_DST = {"pins": 0, "x": 1, "y": 2, "exec": 4, "pc": 5, "isr": 6, "osr": 7}
# mov destinations that touch no pin, no pc and run nothing (x, y, isr, osr).
_MOV_QUIET_DST = (1, 2, 6, 7)
_MOV_SRC = {"pins": 0, "x": 1, "y": 2, "null": 3, "status": 5, "isr": 6, "osr": 7}
_SET_DST = {"pins": 0, "x": 1, "y": 2, "pindirs": 4}
_WAIT_SRC = {"gpio": 0, "pin": 1, "irq": 2}


def _code(table, operand, what):
    name = getattr(operand, "name", None)
    if name not in table:
        raise PIOASMError("invalid {} {}".format(what, operand))
    return table[name]


class _IrqName:
    """`irq` in the DSL: the instruction when called, the wait source as operand."""

    name = "irq"

    def __init__(self, emitter):
        self._emitter = emitter

    def __call__(self, mod, index=None):
        return self._emitter.irq(mod, index)


def _count(init):
    if init is None:
        return 0
    if isinstance(init, int):
        return 1
    return len(init)


def _as_tuple(init):
    if init is None:
        return ()
    if isinstance(init, int):
        return (init,)
    return tuple(init)


class _Emitter:
    """Two passes over the program function: labels first, then instruction words."""

    def __init__(self, sideset_count, side_pindir=False):
        self.sideset_count = sideset_count
        self.side_pindir = side_pindir
        self.sideset_opt = False
        self.delay_max = 31
        self.labels = {}
        self.words = []
        self.pass_ = 0
        self.num_instr = 0
        self.num_side = 0
        self.wrap_target_at = None
        self.wrap_at = None

    def start_pass(self, pass_):
        if pass_ == 1:
            if self.sideset_count:
                self.sideset_opt = self.num_side != self.num_instr
                bits = self.sideset_count + (1 if self.sideset_opt else 0)
                if bits > 5:
                    raise PIOASMError("too many side-set pins")
                self.delay_max = (1 << (5 - bits)) - 1
        self.pass_ = pass_
        self.num_instr = 0
        self.num_side = 0
        self.words = []

    def names(self):
        names = {}
        for name in _OPERANDS:
            names[name] = _Operand(name)
        names["block"] = _Flag("block", 1, 0)
        names["noblock"] = _Flag("noblock", 0, 0)
        names["iffull"] = _Flag("iffull", 1, 1)
        names["ifempty"] = _Flag("ifempty", 1, 1)
        names["clear"] = _Flag("clear", 0, 0, True)
        names["rel"] = lambda index: index | 0x10
        names["invert"] = lambda operand: _MovSource(operand, 1)
        names["reverse"] = lambda operand: _MovSource(operand, 2)
        for name in (
            "wrap_target",
            "wrap",
            "label",
            "word",
            "nop",
            "jmp",
            "wait",
            "in_",
            "out",
            "push",
            "pull",
            "mov",
            "set",
        ):
            names[name] = getattr(self, name)
        names["irq"] = _IrqName(self)
        return names

    # -- chaining: .side(v), [delay], .delay(n) --

    def side(self, value):
        self.num_side += 1
        if self.pass_ == 1:
            if not self.sideset_count:
                raise PIOASMError("side-set used without sideset_init")
            if value < 0 or value >= 1 << self.sideset_count:
                raise PIOASMError("side-set value too large")
            if self.sideset_opt:
                self.words[-1] |= 0x1000 | value << (12 - self.sideset_count)
            else:
                self.words[-1] |= value << (13 - self.sideset_count)
        return self

    def delay(self, cycles):
        if self.pass_ == 1:
            if cycles < 0 or cycles > self.delay_max:
                raise PIOASMError("delay too large for the side-set configuration")
            self.words[-1] |= cycles << 8
        return self

    def __getitem__(self, cycles):
        return self.delay(cycles)

    # -- directives --

    def wrap_target(self):
        self.wrap_target_at = self.num_instr

    def wrap(self):
        if not self.num_instr:
            raise PIOASMError("wrap before any instruction")
        self.wrap_at = self.num_instr - 1

    def label(self, name):
        if self.pass_ == 0:
            if name in self.labels:
                raise PIOASMError("duplicate label {}".format(name))
            self.labels[name] = self.num_instr

    def word(self, instr, label=None):
        if self.pass_ == 1:
            addr = 0
            if isinstance(label, int):
                addr = label
            elif label is not None:
                if label not in self.labels:
                    raise PIOASMError("unknown label {}".format(label))
                addr = self.labels[label]
            self.words.append(instr | addr)
        self.num_instr += 1
        return self

    # -- instructions --

    def nop(self):
        return self.mov(_Operand("y"), _Operand("y"))

    def jmp(self, cond, label=None):
        if label is None:
            return self.word(0x0000, cond)
        return self.word(_code(_JMP_COND, cond, "jmp condition") << 5, label)

    def wait(self, polarity, src, index):
        src_code = _code(_WAIT_SRC, src, "wait source")
        if polarity not in (0, 1) or index < 0 or index > 31:
            raise PIOASMError("invalid wait")
        return self.word(0x2000 | polarity << 7 | src_code << 5 | index)

    def in_(self, src, bits):
        if not 0 < bits <= 32:
            raise PIOASMError("invalid bit count {}".format(bits))
        return self.word(0x4000 | _code(_IN_SRC, src, "in source") << 5 | bits & 31)

    def out(self, dest, bits):
        if not 0 < bits <= 32:
            raise PIOASMError("invalid bit count {}".format(bits))
        return self.word(0x6000 | _code(_OUT_DST, dest, "out destination") << 5 | bits & 31)

    @staticmethod
    def _fifo_flags(flags):
        block = 1
        cond = 0
        for flag in flags:
            if not isinstance(flag, _Flag) or flag.clear:
                raise PIOASMError("invalid push/pull option")
            if flag.cond:
                cond = 1
            else:
                block = flag.block
        return cond << 6 | block << 5

    def push(self, *flags):
        return self.word(0x8000 | self._fifo_flags(flags))

    def pull(self, *flags):
        return self.word(0x8080 | self._fifo_flags(flags))

    def mov(self, dest, src):
        op = src.op if isinstance(src, _MovSource) else 0
        src_code = _code(_MOV_SRC, src, "mov source")
        return self.word(
            0xA000 | _code(_MOV_DST, dest, "mov destination") << 5 | op << 3 | src_code
        )

    def irq(self, mod, index=None):
        clear = 0
        wait = 0
        if index is None:
            index = mod
        elif isinstance(mod, _Flag):
            clear = 1 if mod.clear else 0
            wait = mod.block
        else:
            raise PIOASMError("invalid irq option")
        if not isinstance(index, int) or index & ~0x17:
            raise PIOASMError("invalid irq index")
        return self.word(0xC000 | clear << 6 | wait << 5 | index)

    def set(self, dest, data):
        if not 0 <= data <= 31:
            raise PIOASMError("set value out of range")
        return self.word(0xE000 | _code(_SET_DST, dest, "set destination") << 5 | data)


def _decode(word, sideset_count, sideset_opt):
    """(op, a, b, c, delay, side, visible); side -1 when the instruction sets none."""
    field = (word >> 8) & 0x1F
    side = -1
    if sideset_count:
        bits = sideset_count + (1 if sideset_opt else 0)
        if not sideset_opt or field & 0x10:
            side = (field >> (5 - bits)) & ((1 << sideset_count) - 1)
        delay = field & ((1 << (5 - bits)) - 1)
    else:
        delay = field
    kind = word >> 13
    a = (word >> 5) & 7
    if kind == 0:
        return (_JMP, a, word & 0x1F, 0, delay, side, a == 6)
    if kind == 1:
        return (_WAIT, (word >> 7) & 1, a & 3, word & 0x1F, delay, side, True)
    if kind == 2:
        return (_IN, a, (word & 0x1F) or 32, 0, delay, side, a == 0)
    if kind == 3:
        return (_OUT, a, (word & 0x1F) or 32, 0, delay, side, a in (0, 4, 7))
    if kind == 4:
        op = _PULL if word & 0x80 else _PUSH
        return (op, (word >> 6) & 1, (word >> 5) & 1, 0, delay, side, False)
    if kind == 5:
        src = word & 7
        return (_MOV, a, (word >> 3) & 3, src, delay, side, a in (0, 4) or src == 0)
    if kind == 6:
        return (_IRQ, (word >> 6) & 1, (word >> 5) & 1, word & 0x1F, delay, side, True)
    return (_SET, a, word & 0x1F, 0, delay, side, a in (0, 4))


def _quiet(decoded):
    op, a = decoded[0], decoded[1]
    if op == _IRQ:
        return False
    if op in (_SET, _OUT, _MOV) and a in (0, 4):  # pins, pindirs
        return False
    if op == _OUT and a == 7:  # exec
        return False
    return True


class PIOProgram:
    """An assembled program: instruction words, decoded form, wrap points and settings."""

    def __init__(self, name, emitter, settings):
        self.name = name
        self.words = emitter.words
        self.labels = emitter.labels
        self.sideset_count = emitter.sideset_count
        self.sideset_opt = emitter.sideset_opt
        self.side_pindir = emitter.side_pindir
        self.wrap_target = emitter.wrap_target_at or 0
        self.wrap = emitter.wrap_at if emitter.wrap_at is not None else len(self.words) - 1
        self.decoded = [_decode(w, self.sideset_count, self.sideset_opt) for w in self.words]
        # True when nothing the program does shows outside the state machine: no side-set,
        # no IRQ, no write to pins or pin directions (only registers and the FIFOs).
        self.quiet = not self.sideset_count and all(_quiet(d) for d in self.decoded)
        self.settings = settings

    def __len__(self):
        return len(self.words)


def _assemble(fn, settings):
    emitter = _Emitter(_count(settings["sideset_init"]), settings["side_pindir"])
    names = emitter.names()
    g = fn.__globals__
    saved = g.copy()
    # Like MicroPython's own asm_pio: the DSL names replace the function's
    # globals while it runs (twice: labels, then code), then are put back.
    g.clear()
    g.update(names)
    try:
        emitter.start_pass(0)
        fn()
        emitter.start_pass(1)
        fn()
    finally:
        g.clear()
        g.update(saved)
    if emitter.num_instr > _INSTR_MEM:
        raise PIOASMError("program too long: {} instructions".format(emitter.num_instr))
    if not emitter.num_instr:
        raise PIOASMError("empty program")
    return PIOProgram(fn.__name__, emitter, settings)


def asm_pio(
    *,
    out_init=None,
    set_init=None,
    sideset_init=None,
    side_pindir=False,
    in_shiftdir=0,
    out_shiftdir=0,
    autopush=False,
    autopull=False,
    push_thresh=32,
    pull_thresh=32,
    fifo_join=0,
):
    settings = {
        "out_init": _as_tuple(out_init),
        "set_init": _as_tuple(set_init),
        "sideset_init": _as_tuple(sideset_init) if sideset_init is not None else None,
        "side_pindir": side_pindir,
        "in_shiftdir": in_shiftdir,
        "out_shiftdir": out_shiftdir,
        "autopush": autopush,
        "autopull": autopull,
        "push_thresh": push_thresh,
        "pull_thresh": pull_thresh,
        "fifo_join": fifo_join,
    }

    def decorate(fn):
        return _assemble(fn, settings)

    return decorate


def asm_pio_encode(instr, sideset_count, sideset_opt=False):
    """Assemble one instruction given as a string, e.g. "mov(isr, x)"."""
    emitter = _Emitter(sideset_count)
    emitter.start_pass(1)
    emitter.sideset_opt = sideset_opt
    bits = sideset_count + (1 if sideset_opt else 0)
    emitter.delay_max = (1 << (5 - bits)) - 1
    eval(instr, emitter.names())
    if len(emitter.words) != 1:
        raise PIOASMError("expected one instruction")
    return emitter.words[0]


# -- PIO blocks ----------------------------------------------------------------


# exec()'s instructions, decoded: (instruction, side-set count, optional) -> decoded tuple.
_EXEC_CACHE = {}


class _PioCore:
    def __init__(self, pio_id):
        self.id = pio_id
        self.flags = [0] * 8
        self.programs = []
        self.irq_handler = None
        self.irq_trigger = 0
        self.irq_hard = False


class _State:
    def __init__(self):
        self.cores = [_PioCore(0), _PioCore(1)]
        self.sms = {}


_state = _State()


def reset_fakes():
    """Forget state machines, loaded programs and IRQ flags (used by sim.hw.reset())."""
    for sm in list(_state.sms.values()):
        sm._cancel_event()
    _state.__init__()


class _IrqInfo:
    def __init__(self, flags_fn):
        self._flags_fn = flags_fn

    def flags(self):
        return self._flags_fn()

    def trigger(self):
        return 0


class PIO:
    IN_LOW = 0
    IN_HIGH = 1
    OUT_LOW = 2
    OUT_HIGH = 3
    SHIFT_LEFT = 0
    SHIFT_RIGHT = 1
    IRQ_SM0 = 0x100
    IRQ_SM1 = 0x200
    IRQ_SM2 = 0x400
    IRQ_SM3 = 0x800
    JOIN_NONE = 0
    JOIN_TX = 1
    JOIN_RX = 2

    def __init__(self, id):
        if id not in (0, 1):
            raise ValueError("invalid PIO {}".format(id))
        self._core = _state.cores[id]

    def add_program(self, program):
        core = self._core
        for p in core.programs:
            if p is program:
                return
        used = 0
        for p in core.programs:
            used += len(p)
        if used + len(program) > _INSTR_MEM:
            raise OSError(errno.ENOMEM)
        core.programs.append(program)

    def remove_program(self, program=None):
        core = self._core
        if program is None:
            core.programs = []
        elif program in core.programs:
            core.programs.remove(program)

    def state_machine(self, id, program=None, freq=-1, **kw):
        if not 0 <= id < 4:
            raise ValueError("invalid state machine {}".format(id))
        return StateMachine(self._core.id * 4 + id, program, freq, **kw)

    def irq(self, handler=None, trigger=IRQ_SM0 | IRQ_SM1 | IRQ_SM2 | IRQ_SM3, hard=False):
        core = self._core
        core.irq_handler = handler
        core.irq_trigger = trigger
        core.irq_hard = hard
        return _IrqInfo(lambda: 0)

    def flags(self):
        """Test helper: the eight PIO IRQ flags as a bit mask."""
        mask = 0
        for i in range(8):
            if self._core.flags[i]:
                mask |= 1 << i
        return mask


# -- state machines ------------------------------------------------------------


class StateMachine:
    """One PIO state machine, emulated cycle-exactly on the virtual clock."""

    def __init__(
        self,
        id,
        program=None,
        freq=-1,
        *,
        in_base=None,
        out_base=None,
        set_base=None,
        jmp_pin=None,
        sideset_base=None,
        in_shiftdir=None,
        out_shiftdir=None,
        push_thresh=None,
        pull_thresh=None,
    ):
        if not 0 <= id < 8:
            raise ValueError("invalid StateMachine {}".format(id))
        old = _state.sms.get(id)
        if old is not None and old is not self:
            old._cancel_event()
        _state.sms[id] = self
        self.id = id
        self._core = _state.cores[id // 4]
        self._index = id % 4
        self._program = None
        self._decoded = []
        self._active = False
        self._event = None
        self._snap = None
        self._on_event_fn = self._on_event
        self._gpio_hook = self._on_gpio  # watches the lines a wait() stalled on
        self._irq_handler = None
        self._irq_hard = False
        self.instructions_executed = 0
        self._clear_state()
        if program is not None:
            self.init(
                program,
                freq,
                in_base=in_base,
                out_base=out_base,
                set_base=set_base,
                jmp_pin=jmp_pin,
                sideset_base=sideset_base,
                in_shiftdir=in_shiftdir,
                out_shiftdir=out_shiftdir,
                push_thresh=push_thresh,
                pull_thresh=pull_thresh,
            )

    @staticmethod
    def lookup(id):
        """Test helper: the StateMachine object built for an id."""
        return _state.sms[id]

    def _clear_state(self):
        self._pc = 0
        self._x = 0
        self._y = 0
        self._isr = 0
        self._isr_count = 0
        self._osr = 0
        self._osr_count = 32
        self._tx = []
        self._rx = []
        self._tq = 0
        self._stalled = False
        self._stall_q = 0
        self._stop_q = 0
        self._wait_stall = False
        self._irq_waiting = False

    # -- configuration --

    def init(
        self,
        program,
        freq=-1,
        *,
        in_base=None,
        out_base=None,
        set_base=None,
        jmp_pin=None,
        sideset_base=None,
        in_shiftdir=None,
        out_shiftdir=None,
        push_thresh=None,
        pull_thresh=None,
    ):
        if not isinstance(program, PIOProgram):
            raise TypeError("program must come from rp2.asm_pio")
        self._sync()
        self._cancel_event()
        PIO(self._core.id).add_program(program)
        if freq == -1:
            div256 = 256
        else:
            if freq <= 0:
                raise ValueError("freq out of range")
            div256 = _SYS_FREQ * 256 // freq
            if div256 < 256 or div256 > 65536 * 256:
                raise ValueError("freq out of range")
        self.div256 = div256
        self._cycle_q = div256
        s = program.settings
        self._program = program
        self._decoded = program.decoded
        self._wrap = program.wrap
        self._wrap_target = program.wrap_target
        self._in_base = self._pin_id(in_base, 0)
        self._jmp_pin = self._pin_id(jmp_pin, 0)
        self._in_shift_right = (s["in_shiftdir"] if in_shiftdir is None else in_shiftdir) == 1
        self._out_shift_right = (s["out_shiftdir"] if out_shiftdir is None else out_shiftdir) == 1
        self._push_thresh = s["push_thresh"] if push_thresh is None else push_thresh
        self._pull_thresh = s["pull_thresh"] if pull_thresh is None else pull_thresh
        self._autopush = s["autopush"]
        self._autopull = s["autopull"]
        join = s["fifo_join"]
        self._tx_depth = 8 if join == PIO.JOIN_TX else (0 if join == PIO.JOIN_RX else 4)
        self._rx_depth = 8 if join == PIO.JOIN_RX else (0 if join == PIO.JOIN_TX else 4)
        self._side_pindir = program.side_pindir
        self._side_gpios = self._claim(sideset_base, s["sideset_init"] or ())
        self._set_gpios = self._claim(set_base, s["set_init"])
        self._out_gpios = self._claim(out_base, s["out_init"])
        self._active = False
        self._clear_state()
        self._tq = vclock.current().now_ns * _Q_PER_NS

    @staticmethod
    def _pin_id(pin, default):
        if pin is None:
            return default
        if isinstance(pin, machine.Pin):
            return pin.gpio
        return pin

    def _claim(self, base, init):
        # The pins named by *_init are handed to the PIO with their initial direction/level.
        gpios = []
        if not init:
            return gpios
        if base is None:
            raise ValueError("pin base required for the program's *_init pins")
        base_id = self._pin_id(base, 0)
        for i in range(len(init)):
            g = machine.gpio((base_id + i) % 30)
            g.pio_owned = True
            g.pio_dir = 1 if init[i] >= PIO.OUT_LOW else 0
            g.pio_level = init[i] & 1
            g.update()
            gpios.append(g)
        return gpios

    # -- firmware API --

    def active(self, value=None):
        self._sync()
        if value is None:
            return 1 if self._active else 0
        if value and not self._active:
            if self._program is None:
                raise ValueError("StateMachine has no program")
            self._active = True
            now_q = vclock.current().now_ns * _Q_PER_NS
            if self._tq < now_q and not self._stalled:
                self._tq = now_q
            self._kick()
        elif not value and self._active:
            self._cancel_event()
            self._active = False
        return None

    def restart(self):
        self._sync()
        self._cancel_event()
        self._pc = 0
        self._isr = 0
        self._isr_count = 0
        self._osr_count = 32
        self._stalled = False
        self._wait_stall = False
        self._irq_waiting = False
        self._tq = vclock.current().now_ns * _Q_PER_NS
        self._kick()

    def exec(self, instr):
        token = _irq.pause_heap_lock()
        try:
            self._sync()
            program = self._program
            side_count = program.sideset_count if program else 0
            side_opt = program.sideset_opt if program else False
            key = (instr, side_count, side_opt)
            ins = _EXEC_CACHE.get(key)
            if ins is None:
                # Assembling a string costs an eval(): each distinct one is done once.
                word = (asm_pio_encode(instr, side_count, side_opt) if isinstance(instr, str)
                        else instr)
                ins = _decode(word, side_count, side_opt)
                _EXEC_CACHE[key] = ins
            if ins[5] >= 0:
                self._apply_side(ins[5])
            result = self._perform(ins[0], ins[1], ins[2], ins[3])
            if result == _STALLED:
                raise RuntimeError("exec of an instruction that stalls is not modelled")
            if result >= 0:
                self._pc = result
            elif ins[5] < 0 and (ins[0] == _PUSH or (ins[0] == _MOV
                                                      and ins[1] in _MOV_QUIET_DST)):
                if self._pin_wait_stalled():
                    return  # it still waits on its pin, which kicks it when it changes
            self._kick()
        finally:
            _irq.resume_heap_lock(token)

    def put(self, value, shift=0):
        # May be called from a hard handler: the fake's work runs with the heap unlocked.
        token = _irq.pause_heap_lock()
        try:
            self._sync()
            values = (value,) if isinstance(value, int) else value
            for v in values:
                while len(self._tx) >= self._tx_depth:
                    self._wait_for("put", "TX FIFO full")
                self._tx.append((v << shift) & _MASK)
            self._kick()
        finally:
            _irq.resume_heap_lock(token)

    def get(self, buf=None, shift=0):
        token = _irq.pause_heap_lock()
        try:
            self._sync()
            if buf is None:
                value = self._get_one() >> shift
                if not self._pin_wait_stalled():
                    self._kick()
                return value
            for i in range(len(buf)):
                buf[i] = self._get_one() >> shift
            self._kick()
            return None
        finally:
            _irq.resume_heap_lock(token)

    def _get_one(self):
        while not self._rx:
            self._wait_for("get", "RX FIFO empty")
        return self._rx.pop(0)

    def tx_fifo(self):
        self._sync()
        return len(self._tx)

    def rx_fifo(self):
        self._sync()
        return len(self._rx)

    def irq(self, handler=None, trigger=0 | 1, hard=False):
        self._irq_handler = handler if trigger else None
        self._irq_hard = hard
        core = self._core
        index = self._index
        return _IrqInfo(lambda: core.flags[index])

    # -- test helpers --

    def registers(self):
        """Test helper: dict of pc, x, y, isr, osr and shift counts as of now."""
        self._sync()
        return {
            "pc": self._pc,
            "x": self._x,
            "y": self._y,
            "isr": self._isr,
            "osr": self._osr,
            "isr_count": self._isr_count,
            "osr_count": self._osr_count,
            "stalled": self._stalled,
        }

    # -- blocking FIFO access --

    def _wait_for(self, what, why):
        if not self._active:
            raise Deadlock(
                "StateMachine.{}: {} and the state machine is stopped: "
                "it would block forever".format(what, why)
            )
        if _irq.in_hard_irq():
            raise Deadlock("StateMachine.{}: {} inside a hard interrupt handler".format(what, why))
        clock = vclock.current()
        # Let the emulator run ahead from now, then advance to whichever comes
        # first: the next clock event or the cycle where the emulator stopped
        # (the FIFO is drained or filled at a future cycle without an event).
        self._kick()
        clock.run_until(clock.now_ns)
        target = None
        if self._snap is not None and self._stop_q // _Q_PER_NS + 1 > clock.now_ns:
            target = self._stop_q // _Q_PER_NS + 1
        due = clock.next_due_ns()
        if due is not None and (target is None or due < target):
            target = due
        if target is None:
            raise Deadlock("StateMachine.{}: {} and nothing can change it".format(what, why))
        clock.run_until(target)
        self._sync()

    # -- emulation --

    def _on_gpio(self, g):
        # A line this state machine once waited on changed: a stalled wait() re-checks.
        if self._stalled and self._wait_stall and self._active:
            if self._program.quiet and self._event is None and not vclock.EXACT:
                # Nothing it does shows outside (no pins, no IRQ): it may run right now,
                # inside the change, instead of as a clock event after it.
                self._on_event()
            else:
                self._kick()

    def _pin_wait_stalled(self):
        # Stalled on a wait for a pin's level: only that pin's change (its watcher) can
        # move it on, so a register copy or a FIFO access needs no look again.
        if not self._stalled or not self._wait_stall or self._irq_waiting or vclock.EXACT:
            return False
        ins = self._decoded[self._pc]
        return ins[0] == _WAIT and ins[2] < 2

    def _cancel_event(self):
        if self._event is not None:
            self._event.cancel()
            self._event = None

    def _kick(self):
        """Let the state machine run from now (as a clock event, after the caller)."""
        if not self._active or self._event is not None:
            return
        clock = vclock.current()
        self._event = clock.call_at(clock.now_ns, self._on_event_fn, True)

    def _take_snapshot(self):
        self._snap = (
            self._pc,
            self._x,
            self._y,
            self._isr,
            self._isr_count,
            self._osr,
            self._osr_count,
            list(self._tx),
            list(self._rx),
            self._tq,
            self._stalled,
            self._stall_q,
            self._wait_stall,
            self._irq_waiting,
        )

    def _sync(self):
        """Bring registers and FIFOs back to the state as of now (undo running ahead)."""
        snap = self._snap
        if snap is None:
            return
        (
            self._pc,
            self._x,
            self._y,
            self._isr,
            self._isr_count,
            self._osr,
            self._osr_count,
            tx,
            rx,
            self._tq,
            self._stalled,
            self._stall_q,
            self._wait_stall,
            self._irq_waiting,
        ) = snap
        self._tx = list(tx)
        self._rx = list(rx)
        self._snap = None
        self._cancel_event()
        if not self._stalled:
            now_q = vclock.current().now_ns * _Q_PER_NS
            self._execute(now_q, now_q)
        # Resume from the exact state as of now (after the caller's access); a machine
        # stalled on a pin's level resumes when the pin changes (its watcher).
        if not self._pin_wait_stalled():
            self._kick()

    def _on_event(self):
        self._event = None
        self._snap = None
        if not self._active:
            return
        clock = vclock.current()
        now_q = clock.now_ns * _Q_PER_NS
        if self._stalled:
            # Retry the stalled instruction at the first cycle edge from now.
            cyc = self._cycle_q
            if now_q > self._stall_q:
                self._tq = self._stall_q + (now_q - self._stall_q + cyc - 1) // cyc * cyc
            else:
                self._tq = self._stall_q
            self._stalled = False
            self._wait_stall = False
        reason = self._execute(None, now_q + _Q_PER_NS)
        self._stop_q = self._stall_q if reason == _STOP_STALL else self._tq
        if self._snap is None:
            self._take_snapshot()
        if reason == _STOP_VISIBLE:
            self._event = clock.call_at(self._tq // _Q_PER_NS, self._on_event_fn, True)

    def _execute(self, limit_q, vis_q):
        """Run instructions until limit_q, a visible action at or after vis_q, or a stall."""
        decoded = self._decoded
        cyc = self._cycle_q
        snapshot = limit_q is None
        while True:
            tq = self._tq
            if limit_q is not None and tq >= limit_q:
                return _STOP_LIMIT
            pc = self._pc
            op, a, b, c, delay, side, visible = decoded[pc]
            if side >= 0 and not visible:
                visible = self._side_differs(side)
            if tq >= vis_q:
                if visible:
                    if op == _WAIT and b < 2 and not vclock.EXACT:
                        # A wait on a line ahead of now that the line's level as of now
                        # would stall: stall there already. A change of the line before
                        # then kicks the machine (its watchers), which looks again.
                        g = machine.gpio((c if b == 0 else self._in_base + c) % 30)
                        if g.level != a:
                            if self._gpio_hook not in g.watchers:
                                g.watchers.append(self._gpio_hook)
                            self._stalled = True
                            self._stall_q = tq
                            self._wait_stall = True
                            return _STOP_STALL
                    return _STOP_VISIBLE
                if snapshot:
                    # The first instruction in the future: what follows is run ahead.
                    self._take_snapshot()
                    snapshot = False
            if side >= 0:
                self._apply_side(side)
            self.instructions_executed += 1
            if op == _JMP and b == pc and (a == 2 or a == 4) and FAST_FORWARD:
                # A counted self-loop: consume all its iterations at once.
                reg = self._x if a == 2 else self._y
                per = (1 + delay) * cyc
                n = reg + 1
                if limit_q is not None:
                    avail = (limit_q - tq + per - 1) // per
                    if avail < n:
                        n = avail
                if n == reg + 1:
                    reg = _MASK
                    self._pc = self._wrap_target if pc == self._wrap else pc + 1
                else:
                    reg -= n
                if a == 2:
                    self._x = reg
                else:
                    self._y = reg
                self._tq = tq + n * per
                continue
            result = self._perform(op, a, b, c)
            if result == _STALLED:
                self._stalled = True
                self._stall_q = tq
                return _STOP_STALL
            if result == _NEXT:
                self._pc = self._wrap_target if pc == self._wrap else pc + 1
            else:
                self._pc = result
            self._tq = tq + (1 + delay) * cyc

    def _side_differs(self, side):
        i = 0
        for g in self._side_gpios:
            bit = (side >> i) & 1
            if (g.pio_dir if self._side_pindir else g.pio_level) != bit:
                return True
            i += 1
        return False

    def _apply_side(self, side):
        i = 0
        for g in self._side_gpios:
            bit = (side >> i) & 1
            if self._side_pindir:
                g.pio_dir = bit
            else:
                g.pio_level = bit
            g.update()
            i += 1

    def _write_pins(self, gpios, value, dirs):
        i = 0
        for g in gpios:
            bit = (value >> i) & 1
            if dirs:
                g.pio_dir = bit
            else:
                g.pio_level = bit
            g.update()
            i += 1

    def _read_pins(self, base, count):
        value = 0
        for i in range(count):
            if machine.gpio((base + i) % 30).level:
                value |= 1 << i
        return value

    def _source(self, code):
        if code == 0:
            return self._read_pins(self._in_base, 32)
        if code == 1:
            return self._x
        if code == 2:
            return self._y
        if code == 5:
            return _MASK if len(self._tx) < self._tx_depth else 0
        if code == 6:
            return self._isr
        if code == 7:
            return self._osr
        return 0

    def _flag_index(self, index):
        if index & 0x10:
            return ((index & 3) + self._index) & 3 | (index & 4)
        return index & 7

    def _perform(self, op, a, b, c):
        """Execute one decoded instruction; next pc, _NEXT, or _STALLED."""
        if op == _JMP:
            if a == 0:
                return b
            if a == 1:
                return b if self._x == 0 else _NEXT
            if a == 2:
                taken = self._x != 0
                self._x = (self._x - 1) & _MASK
                return b if taken else _NEXT
            if a == 3:
                return b if self._y == 0 else _NEXT
            if a == 4:
                taken = self._y != 0
                self._y = (self._y - 1) & _MASK
                return b if taken else _NEXT
            if a == 5:
                return b if self._x != self._y else _NEXT
            if a == 6:
                return b if machine.gpio(self._jmp_pin).level else _NEXT
            return b if self._osr_count < self._pull_thresh else _NEXT
        if op == _PULL:
            if a and self._osr_count < self._pull_thresh:
                return _NEXT
            if self._tx:
                self._osr = self._tx.pop(0)
            elif b:
                return _STALLED
            else:
                self._osr = self._x
            self._osr_count = 0
            return _NEXT
        if op == _PUSH:
            if a and self._isr_count < self._push_thresh:
                return _NEXT
            if len(self._rx) >= self._rx_depth:
                if b:
                    return _STALLED
            else:
                self._rx.append(self._isr)
            self._isr = 0
            self._isr_count = 0
            return _NEXT
        if op == _MOV:
            value = self._source(c)
            if b == 1:
                value = ~value & _MASK
            elif b == 2:
                rev = 0
                for _ in range(32):
                    rev = (rev << 1) | (value & 1)
                    value >>= 1
                value = rev
            return self._store(a, value, True)
        if op == _SET:
            if a == 0:
                self._write_pins(self._set_gpios, b, False)
            elif a == 4:
                self._write_pins(self._set_gpios, b, True)
            elif a == 1:
                self._x = b
            elif a == 2:
                self._y = b
            return _NEXT
        if op == _IRQ:
            flag = self._flag_index(c)
            flags = self._core.flags
            if a:
                flags[flag] = 0
                self._wake_irq_waiters()
                return _NEXT
            if self._irq_waiting:
                if flags[flag]:
                    return _STALLED
                self._irq_waiting = False
                return _NEXT
            self._raise_flag(flag)
            if b and flags[flag]:
                self._irq_waiting = True
                self._wait_stall = True
                return _STALLED
            return _NEXT
        if op == _WAIT:
            if b < 2:
                g = machine.gpio((c if b == 0 else self._in_base + c) % 30)
                level = g.level
                if level != a and self._gpio_hook not in g.watchers:
                    g.watchers.append(self._gpio_hook)
            else:
                flag = self._flag_index(c)
                level = self._core.flags[flag]
                if level == a and a == 1:
                    self._core.flags[flag] = 0
            if level != a:
                self._wait_stall = True
                return _STALLED
            return _NEXT
        if op == _OUT:
            if self._autopull and self._osr_count >= self._pull_thresh:
                if not self._tx:
                    return _STALLED
                self._osr = self._tx.pop(0)
                self._osr_count = 0
            bits = b
            mask = _MASK if bits == 32 else (1 << bits) - 1
            if self._out_shift_right:
                data = self._osr & mask
                self._osr = self._osr >> bits if bits < 32 else 0
            else:
                data = (self._osr >> (32 - bits)) & mask
                self._osr = (self._osr << bits) & _MASK
            self._osr_count = min(32, self._osr_count + bits)
            if a == 0:
                self._write_pins(self._out_gpios, data, False)
                return _NEXT
            if a == 4:
                self._write_pins(self._out_gpios, data, True)
                return _NEXT
            if a == 6:
                self._isr = data
                self._isr_count = bits
                return _NEXT
            if a == 7:
                raise NotImplementedError("out(exec, ...) is not modelled")
            return self._store(a, data, False)
        if op == _IN:
            bits = b
            if self._autopush and self._isr_count + bits >= self._push_thresh:
                if len(self._rx) >= self._rx_depth:
                    return _STALLED
            mask = _MASK if bits == 32 else (1 << bits) - 1
            data = (self._read_pins(self._in_base, bits) if a == 0 else self._source(a)) & mask
            if self._in_shift_right:
                if bits == 32:
                    self._isr = data
                else:
                    self._isr = (self._isr >> bits) | (data << (32 - bits))
            else:
                self._isr = ((self._isr << bits) | data) & _MASK
            self._isr_count = min(32, self._isr_count + bits)
            if self._autopush and self._isr_count >= self._push_thresh:
                self._rx.append(self._isr)
                self._isr = 0
                self._isr_count = 0
            return _NEXT
        raise PIOASMError("unknown instruction")

    def _store(self, dest, value, is_mov):
        if dest == 0:
            self._write_pins(self._out_gpios, value, False)
        elif dest == 1:
            self._x = value
        elif dest == 2:
            self._y = value
        elif dest == 4 and is_mov:
            raise NotImplementedError("mov(exec, ...) is not modelled")
        elif dest == 4:
            self._write_pins(self._out_gpios, value, True)
        elif dest == 5:
            return value & 31
        elif dest == 6:
            self._isr = value
            self._isr_count = 0
        elif dest == 7:
            self._osr = value
            self._osr_count = 0
        return _NEXT

    def _raise_flag(self, flag):
        core = self._core
        core.flags[flag] = 1
        if flag >= 4:
            self._wake_irq_waiters()
            return
        sm = _state.sms.get(core.id * 4 + flag)
        sm_handler = sm._irq_handler if sm is not None else None
        pio_handler = core.irq_handler if core.irq_trigger & (PIO.IRQ_SM0 << flag) else None
        if sm_handler is None and pio_handler is None:
            self._wake_irq_waiters()
            return
        # As the rp2 port does: clear the flag, then call the handlers.
        core.flags[flag] = 0
        self._wake_irq_waiters()
        if sm_handler is not None:
            self._call_handler(sm_handler, sm._irq_hard, sm)
        if pio_handler is not None:
            self._call_handler(pio_handler, core.irq_hard, PIO(core.id))

    @staticmethod
    def _call_handler(handler, hard, arg):
        if hard:
            _irq.run_hard(handler, arg)
        else:
            clock = vclock.current()
            clock.call_at(clock.now_ns, lambda: handler(arg))

    def _wake_irq_waiters(self):
        for sm in _state.sms.values():
            if sm is not self and sm._stalled and sm._wait_stall:
                sm._kick()
