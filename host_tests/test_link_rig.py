"""Test rig (no tests here): a simulated pump with its USB port on a fake pipe, and a host side."""

from pump.core import protocol as p
from pump.hal.usb_serial import UsbSerial
from sim import pump as pumpsim
from sim.hw.usbcdc import UsbCdcPipe


class TickClock:
    """The time functions lock_console waits with, in ms that only sleep_ms moves."""

    def __init__(self):
        self.t = 0

    def ticks_ms(self):
        return self.t

    def ticks_diff(self, a, b):
        return a - b

    def sleep_ms(self, ms):
        self.t += ms


class LinkRig:
    """``ask(command, *args)`` sends one request with the next sequence number and runs the
    firmware until it answered; returns the parsed responses (``more`` lines, then the last)."""

    def __init__(self, display=True, **sim_kw):
        self.pipe = UsbCdcPipe()
        pipe = self.pipe

        def attach(board):
            board.serial = UsbSerial(pipe.rx, pipe.tx, pipe.poller)
            if not display:
                board.display = None

        self.sim = pumpsim.SimPump(prepare_board=attach, **sim_kw)
        self.app = self.sim.app
        self.link = self.app.link
        self.decoder = p.ResponseDecoder()
        self.seq = 0
        self.run(500)

    def run(self, ms):
        self.sim.run_until(self.sim.now_ms() + ms)

    def send(self, data, ms=50):
        """Raw bytes to the pump; returns what came back, parsed."""
        self.pipe.send(data)
        self.run(ms)
        return self.decoder.feed(self.pipe.receive())

    def ask(self, command, *args, seq=None):
        if seq is None:
            self.seq += 1
            seq = self.seq
        return self.send(p.encode_request(seq, command, *args))

    def last(self, command, *args, seq=None):
        """The final answer to one request."""
        answers = self.ask(command, *args, seq=seq)
        assert answers, "no answer to %s" % command
        return answers[-1]

    def events(self, etype):
        return [e for e in self.sim.events if e[2] == etype]

    def screen(self):
        return self.sim.screen_text()
