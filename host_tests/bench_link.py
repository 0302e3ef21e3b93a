"""`make bench`, the link: 10,000 random and 10,000 mutated frames through the pump's decoder
and dispatcher (the fuzz of test_link_fuzz.py at benchmark size), with the rate; nothing may
raise or change therapy. Run as a script: ``python host_tests/bench_link.py`` (tools/bench.py
does)."""

import os
import sys

EXAMPLES = int(os.environ.get("LINK_FUZZ_EXAMPLES", "10000"))


def bench(examples=EXAMPLES):
    """Run the fuzz; returns its figures (frames, seconds, frames_per_s, held_then_rejected)."""
    from sim import hw

    hw.install()  # as conftest.py does: machine, rp2, ... are the fakes
    from test_link_fuzz import run_fuzz

    return run_fuzz(examples)


def main():
    print("link fuzz: %d random + %d mutated frames ..." % (EXAMPLES, EXAMPLES), flush=True)
    figures = bench()
    print(
        "link fuzz: %(frames)d frames in %(seconds).1f s (%(frames_per_s).0f frames/s), "
        "%(held_then_rejected)d held changes rejected, no exception, therapy unchanged"
        % figures
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
