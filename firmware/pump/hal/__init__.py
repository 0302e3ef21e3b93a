"""The only code that touches hardware; it receives peripherals already built by the board."""
