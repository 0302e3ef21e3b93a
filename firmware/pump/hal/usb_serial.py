"""The USB CDC serial port: bytes in without ever blocking, whole lines out.

On the Pico the port is MicroPython's stdio: the board file passes
``sys.stdin.buffer``, ``sys.stdout.buffer`` and a ``select.poll()`` with stdin
registered for reading. Reading more bytes than are waiting would block, so
bytes are taken one at a time while the poller says one is there, at most
``len(buf)`` per call. Host tests pass a fake pipe with the same three faces.
"""

from micropython import const

_RX_BUF = const(64)  # bytes taken per read(): the main loop comes back for the rest
_POLLIN = const(1)  # select.POLLIN on every port


class UsbSerial:
    """``read()`` returns a memoryview of the bytes waiting (maybe empty), never blocking;
    ``write(data)`` sends a whole line. The receive buffer is allocated once."""

    def __init__(self, rx, tx, poller, rx_buf=_RX_BUF):
        self._rx = rx
        self._tx = tx
        # ipoll (MicroPython's) answers without allocating, and the main loop asks before
        # every wait; poll() builds a list each time (a fake port's poller has only that).
        self._poll = getattr(poller, "ipoll", None) or poller.poll
        self._buf = bytearray(rx_buf)
        self._view = memoryview(self._buf)
        self._one = bytearray(1)
        self.bytes_in = 0
        self.bytes_out = 0
        self.dropped = 0  # bytes the port would not take

    def any(self):
        """True when at least one byte is waiting."""
        for entry in self._poll(0):
            if entry[1] & _POLLIN:
                return True
        return False

    def read(self):
        """The bytes waiting, up to the buffer's size (a view into it: use before next read)."""
        n = 0
        size = len(self._buf)
        one = self._one
        while n < size and self.any():
            if not self._rx.readinto(one):
                break
            self._buf[n] = one[0]
            n += 1
        if not n:
            return b""  # nothing waiting: no view made
        self.bytes_in += n
        return self._view[:n]

    def write(self, data):
        """Send ``data`` (bytes: one or more whole lines)."""
        view = memoryview(data)
        sent = 0
        while sent < len(view):
            n = self._tx.write(view[sent:])
            if n is None:  # a stream that takes everything says nothing
                n = len(view) - sent
            if n <= 0:  # nobody reads the port: drop the rest, never wait
                self.dropped += len(view) - sent
                break
            sent += n
        self.bytes_out += sent
