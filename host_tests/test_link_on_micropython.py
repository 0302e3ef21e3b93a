"""The link on a real MicroPython: it answers, refuses and survives bad bytes there too."""

import pytest

from mpy.wasm import GUEST_PATHS, run_micropython

pytestmark = [pytest.mark.micropython, pytest.mark.slow]

GUEST = """
from guest_pump import fresh_clock, without

clock = fresh_clock()

import pico_default
from usbcdc import UsbCdcPipe
from pump.app import App
from pump.core import protocol as p
from pump.hal.usb_serial import UsbSerial

board = pico_default.build()
# Motor and link only: the guest's heap is small (the screens have their own tests).
without(board, ("display", "battery", "battery_monitor", "watchdog",
                "force_sensor", "pressure", "occlusion"))
pipe = UsbCdcPipe()
board.serial = UsbSerial(pipe.rx, pipe.tx, pipe.poller)
app = App(board, clock, ms_of_day=0)
app.start()


def ask(data):
    pipe.send(data)
    for _ in range(8):
        app.service()
    return pipe.receive()


try:
    print(ask(p.encode_request(1, "hello")))
    print(ask(p.encode_request(2, "status")))
    print(ask(p.encode_request(3, "history", 0, 2)))
    print(ask(p.encode_request(4, "bolus", 1000)))
    print(ask(p.encode_request(4, "status")))
    print(ask(b"\\x03\\x00\\xff junk\\n" + b"z" * 300 + b"\\n"))
    print("bolus", app.therapy.bolus)
except Exception as exc:
    print("guest failed:", repr(exc))
"""


def test_the_link_answers_refuses_and_survives_bad_bytes_on_micropython():
    stdout, _ = run_micropython(GUEST, ("/input/sim/hw",) + GUEST_PATHS)
    assert "guest failed" not in stdout, stdout
    assert "ok device=pico-insulin-pump" in stdout
    assert "2 ok time=00:00:" in stdout and "basal_mu_per_h=800" in stdout
    assert stdout.count("3 more seq=") == 2
    assert "4 err code=cannot_confirm" in stdout  # no screen on this board: never held
    assert "4 err code=replay" in stdout
    assert "code=not_ascii" in stdout and "code=too_long" in stdout
    assert "bolus None" in stdout
