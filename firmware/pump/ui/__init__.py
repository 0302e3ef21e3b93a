"""The pump's screens and menus, driven by the four keys and drawn on a 128x64 framebuf."""
