"""The hardware watchdog, fed only while every periodic job of the pump reports in."""

from micropython import const

WDT_MAX_TIMEOUT_MS = const(8388)  # RP2040: 24-bit counter at 2 ticks/us (erratum RP2040-E1)
DEFAULT_TIMEOUT_MS = const(8000)


class Watchdog:
    """Feeds a machine.WDT only when told that the pump is healthy.

    ``source`` is a WDT already running, or a factory called as
    ``source(timeout=timeout_ms)`` by ``start()`` (machine.WDT itself will do):
    a WDT cannot be stopped once created, so the board file hands over the
    factory and the App starts it when boot work (the self-test) is done.
    """

    def __init__(self, source, timeout_ms=DEFAULT_TIMEOUT_MS):
        if type(timeout_ms) is not int or not 0 < timeout_ms <= WDT_MAX_TIMEOUT_MS:
            raise ValueError(
                "watchdog timeout_ms must be 1..%d on the RP2040, got %r"
                % (WDT_MAX_TIMEOUT_MS, timeout_ms)
            )
        self.timeout_ms = timeout_ms
        if isinstance(source, type) or not hasattr(source, "feed"):
            self._factory = source
            self._wdt = None
        else:
            self._factory = None
            self._wdt = source
        self.feeds = 0
        self.withheld = 0  # calls that did not feed because a job was late

    def start(self):
        """Start the hardware watchdog (once; later calls do nothing)."""
        if self._wdt is None:
            self._wdt = self._factory(timeout=self.timeout_ms)

    @property
    def started(self):
        return self._wdt is not None

    def feed_interval_ms(self):
        """The longest the main loop should sleep: half the timeout leaves room for one late
        wake-up before the chip resets."""
        return self.timeout_ms // 2

    def feed_if(self, healthy):
        """Feed when ``healthy`` (TaskMonitor.healthy(now)); else let the watchdog run out.

        Allocation-free. Returns True when it fed."""
        wdt = self._wdt
        if wdt is None:
            return False
        if healthy:
            wdt.feed()
            self.feeds += 1
            return True
        self.withheld += 1
        return False
