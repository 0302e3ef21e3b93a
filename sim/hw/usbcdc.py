"""Fake USB CDC serial port: a byte pipe between a host program and the pump's stdio.

``UsbCdcPipe`` gives the firmware side what the board file passes to
``pump.hal.usb_serial.UsbSerial`` (``rx``, ``tx``, ``poller``) and the host side
``send(bytes)`` / ``receive()``; it runs under MicroPython too. ``rx_limit`` models
the device's small receive buffer (a few hundred bytes on the RP2040; 256 by
default): bytes beyond it wait on the host side until the firmware reads, as a USB
host would hold them.
"""

POLLIN = 1


class _Rx:
    def __init__(self, pipe):
        self._pipe = pipe

    def readinto(self, buf):
        pipe = self._pipe
        n = min(len(buf), len(pipe.to_pump))
        for i in range(n):
            buf[i] = pipe.to_pump[i]
        pipe.to_pump = pipe.to_pump[n:]
        pipe._refill()
        return n


class _Tx:
    def __init__(self, pipe):
        self._pipe = pipe

    def write(self, data):
        if not self._pipe.connected:
            return len(data)  # nobody listening: USB CDC drops it
        self._pipe.from_pump.extend(bytes(data))
        return len(data)


class _Poller:
    def __init__(self, pipe):
        self._pipe = pipe
        self.polls = 0

    def register(self, obj, mask=POLLIN):
        pass

    def unregister(self, obj):
        pass

    def poll(self, timeout=-1):
        self.polls += 1
        if self._pipe.to_pump:
            return [(self._pipe.rx, POLLIN)]
        return []


class UsbCdcPipe:
    """Both ends of the port. ``connected`` False: what the pump writes is lost."""

    def __init__(self, rx_limit=256):
        self.rx_limit = rx_limit
        self.to_pump = bytearray()  # in the device's receive buffer
        self._waiting = bytearray()  # sent by the host, not yet taken by the device
        self.from_pump = bytearray()
        self.connected = True
        self.rx = _Rx(self)
        self.tx = _Tx(self)
        self.poller = _Poller(self)

    def _refill(self):
        room = self.rx_limit - len(self.to_pump)
        if room > 0 and self._waiting:
            self.to_pump.extend(self._waiting[:room])
            self._waiting = self._waiting[room:]

    def send(self, data):
        """The host writes ``data`` to the port."""
        self._waiting.extend(data)
        self._refill()

    def pending(self):
        """Bytes sent by the host that the firmware has not read yet."""
        return len(self.to_pump) + len(self._waiting)

    def receive(self):
        """Everything the pump wrote since the last call (bytes)."""
        out = bytes(self.from_pump)
        self.from_pump = bytearray()
        return out
