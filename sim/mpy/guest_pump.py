"""For a run of the whole firmware inside MicroPython (and the same code on CPython): fresh
fakes, the board file without the devices a run leaves out, the main loop in virtual time."""

import irq
import machine
import rp2
import vclock


def fresh_clock():
    """Reset every fake and return the virtual clock."""
    vclock.reset()
    irq.reset()
    machine.reset_fakes()
    rp2.reset_fakes()
    return vclock.current()


def without(board, names):
    """Detach the named devices from ``board`` (a small guest heap runs only what it tests)."""
    for name in names:
        if getattr(board, name, None) is not None:
            setattr(board, name, None)
    return board


def run_for(app, clock, ms):
    """Run the main loop (service, sleep) for ``ms`` of virtual time, then one pass more."""
    end = clock.now_ns + ms * 1_000_000
    clock.call_at(end, lambda: app.post(lambda a: None))
    while clock.now_ns < end:
        app.service()
        app.sleep()
    app.service()
