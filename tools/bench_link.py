"""`make bench`, the link: 10,000 random and 10,000 mutated frames through the pump's decoder
and dispatcher (host_tests/test_link_fuzz.py), with the rate; nothing may raise or change
therapy."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "host_tests"))
sys.path.insert(0, HERE)

import pumpsim  # noqa: F401  (firmware/ and the fakes on sys.path)

EXAMPLES = int(os.environ.get("LINK_FUZZ_EXAMPLES", "10000"))


def bench(examples=EXAMPLES):
    """Run the fuzz; returns its figures (frames, seconds, frames_per_s, held_then_rejected)."""
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
