"""Firmware of a bench insulin pump: pure therapy logic (core), hardware (hal), wiring (app)."""

VERSION = "0.1.0"
