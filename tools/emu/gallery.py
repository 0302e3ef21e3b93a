"""Walk the screens of tools/scenarios/screens/gallery.toml by key presses on an emulated pump.

The gallery's actions (press, hold, screenshot) are replayed at their times, in emulated
time, on a Rig; a gap longer than ``max_gap_ms`` is shortened to it (the gallery leaves
seconds between actions for its pictures). A press is 80 ms down and 120 ms up, as in
the scenario runner. ``on_screen(name)`` is called where the gallery takes a screenshot.
"""

import os
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
GALLERY = os.path.join(os.path.dirname(HERE), "scenarios", "screens", "gallery.toml")
PRESS_DOWN_MS = 80
PRESS_UP_MS = 120


def load(path=GALLERY):
    """The gallery's actions, in time order: dicts with at_ms and press/hold/screenshot."""
    with open(path, "rb") as f:
        data = tomllib.load(f)
    actions = []
    for action in data.get("actions", []):
        entry = {"at_ms": round(float(action["at_min"]) * 60_000)}
        for kind in ("press", "hold", "screenshot"):
            if kind in action:
                entry[kind] = action[kind]
        actions.append(entry)
    actions.sort(key=lambda a: a["at_ms"])
    return actions


def screen_names(path=GALLERY):
    return [a["screenshot"] for a in load(path) if "screenshot" in a]


def walk(rig, on_screen, path=GALLERY, max_gap_ms=1000):
    """Replay the gallery on ``rig``; returns the emulated milliseconds it took."""
    elapsed = 0  # emulated ms since the start, on the shortened schedule
    last_at = 0
    for action in load(path):
        gap = min(action["at_ms"] - last_at, max_gap_ms)
        last_at = action["at_ms"]
        if gap > 0:
            rig.wait_ms(gap)
            elapsed += gap
        if "press" in action:
            for key in action["press"]:
                rig.press(key.lower(), PRESS_DOWN_MS)
                rig.wait_ms(PRESS_DOWN_MS + PRESS_UP_MS)
                elapsed += PRESS_DOWN_MS + PRESS_UP_MS
                last_at += PRESS_DOWN_MS + PRESS_UP_MS
        if "hold" in action:
            hold = action["hold"]
            keys = hold["key"] if isinstance(hold["key"], list) else [hold["key"]]
            for key in keys:
                rig.press(key.lower(), int(hold["ms"]))
            rig.wait_ms(int(hold["ms"]) + PRESS_UP_MS)
            elapsed += int(hold["ms"]) + PRESS_UP_MS
            last_at += int(hold["ms"]) + PRESS_UP_MS
        if "screenshot" in action:
            on_screen(action["screenshot"])
    return elapsed
