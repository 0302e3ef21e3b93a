"""The README as a newcomer reads it: the files it names exist, the commands in its code
blocks are accepted by the tools they call, the options it lists are taken, and the make
targets it names are there."""

import os
import re
import shlex
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(ROOT, "tools")
README = open(os.path.join(ROOT, "README.md")).read()


def code_blocks(language):
    return re.findall(r"```%s\n(.*?)```" % language, README, re.S)


def commands():
    """Every command line of the README's sh blocks, comments dropped."""
    lines = []
    for block in code_blocks("sh"):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def test_every_file_the_readme_links_or_names_exists():
    linked = re.findall(r"\]\(((?:docs|tools|boards|firmware|host_tests|sim)/[^)#]+)\)", README)
    named = re.findall(r"`((?:docs|tools|boards|host_tests|sim)/[\w/.-]+\.(?:py|md|toml|png|svg))`",
                       README)
    assert linked and named
    missing = sorted({p for p in linked + named if not os.path.exists(os.path.join(ROOT, p))})
    assert not missing, missing


def test_every_make_target_the_readme_names_is_in_the_makefile():
    makefile = open(os.path.join(ROOT, "Makefile")).read()
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, re.M))
    named = set(re.findall(r"`make ([a-z][\w-]*)", README))
    assert {"sim", "test", "bench", "screens", "build", "flash", "repl"} <= named
    assert named <= targets, named - targets


TOOL_COMMANDS = [line for line in commands() if re.search(r"tools/\w+\.py", line)]


@pytest.mark.parametrize("line", TOOL_COMMANDS)
def test_every_tool_command_in_the_readme_parses(line):
    """Each `python tools/x.py ...` line: its options are ones the tool's parser takes
    (checked by argparse with --help appended, so nothing runs)."""
    words = shlex.split(line.replace(".venv/bin/python", "python"))
    script = next(w for w in words if re.match(r"tools/\w+\.py$", w))
    args = words[words.index(script) + 1:]
    known = _options(script)
    for word in args:
        if word.startswith("--"):
            assert word.split("=")[0] in known, (line, word)


@pytest.mark.parametrize("line", [c for c in commands() if c.startswith("pumpctl")])
def test_every_pumpctl_command_in_the_readme_parses(line):
    import pumpctl

    words = shlex.split(line.split(">")[0])[1:]
    args = pumpctl.build_parser().parse_args(words)
    assert args.run is not None


def _options(script):
    result = subprocess.run([sys.executable, os.path.join(ROOT, script), "--help"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return set(re.findall(r"(--[\w-]+)", result.stdout))


def test_the_simulator_options_the_readme_lists_are_taken():
    import simulate

    text = README[README.index("Options (`make sim"):]
    listed = set(re.findall(r"`(--[\w-]+)", text[:600]))
    assert {"--board", "--start", "--speed", "--seed", "--headless"} <= listed
    parser = simulate.build_parser()
    taken = {o for action in parser._actions for o in action.option_strings}
    assert listed <= taken


def test_the_scenario_keys_the_readme_shows_are_taken():
    import scenario

    (example,) = [b for b in code_blocks("toml") if "[settings]" in b]
    import tomllib

    data = tomllib.loads(example)
    assert scenario.Scenario(data, "readme").actions


def test_the_settings_keys_pumpctl_writes_are_a_scenario_s():
    import pumpctl

    for key in ("max_bolus", "max_basal", "bolus_increment", "bolus_speed", "active_profile",
                "profiles"):
        assert key in pumpctl.SETTINGS_KEYS
        assert "`%s`" % key in README or key in README


def test_the_demo_report_in_the_readme_uses_a_person_s_units():
    block = README[README.index("Simulated pump: board"):]
    block = block[:block.index("```")]
    assert "0.0014725 U per motor step" in block
    assert not re.search(r"\b\d+ mU\b|_mu\b|cause=", block)


def _make(*args):
    result = subprocess.run(["make", "--no-print-directory", *args], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout


SHOW = "--eval=show: ; @echo $(BENCH_OUT) $(SCREENS_OUT) $(BENCH_QUICK) $(RECOVERY_QUICK)"


def test_make_bench_and_screens_write_to_out_unless_asked_to_update_docs():
    assert _make(SHOW, "show").split() == ["out/bench", "out/screens/png"]
    assert _make(SHOW, "show", "UPDATE_DOCS=1").split() == ["docs/bench", "docs/screens"]
    quick = _make(SHOW, "show", "QUICK=1")
    assert "--hours 1 --month-days 1" in quick and "--cuts 50" in quick
    assert "out/screens/png" in _make("-n", "screens")


def test_make_repl_opens_mpremote_s_repl_on_the_port_given():
    assert "mpremote connect /dev/ttyACM7 repl" in _make("-n", "repl", "PORT=/dev/ttyACM7")


def _section(title):
    start = README.index(title)
    end = README.find("\n## ", start + len(title))
    return README[start:end if end > 0 else None]


def test_the_therapy_figures_are_the_firmware_s():
    from pump.core import limits as lim
    from pump.core.therapy import Settings

    text = " ".join(_section("## Therapy features and limits").split())
    s = Settings()
    assert "up to %d profiles" % lim.MAX_PROFILES in text
    assert "0–%d %%" % lim.TEMP_MAX_PERCENT in text
    assert "30 min to 24 h" in text and lim.TEMP_MIN_MS == 30 * 60_000
    assert lim.TEMP_MAX_MS == 24 * 3_600_000
    assert lim.EXTENDED_MIN_MS == 30 * 60_000 and lim.EXTENDED_MAX_MS == 8 * 3_600_000
    assert "30 min to 8 h" in text
    assert "0.01, 0.025, 0.05 or 0.1 U" in text and lim.INCREMENT_CHOICES_MU == (10, 25, 50, 100)
    assert "at most %d U" % (lim.MAX_BOLUS_MU // 1000) in text
    assert "1.5–15 U/min" in text
    assert (lim.SPEED_STANDARD_MU_MIN, lim.SPEED_QUICK_MU_MIN) == (1500, 15_000)
    factory = 'profile "%s" at %.2f U/h, max bolus %d U, max basal %d U/h, increment %.2f U, ' \
        "speed %.1f U/min" % (s.profiles[0].name, s.profiles[0].segments[0][1] / 1000,
                              s.max_bolus_mu // 1000, s.max_basal_mu_per_h // 1000,
                              s.increment_mu / 1000, s.bolus_speed_mu_per_min / 1000)
    assert factory in text, factory


def test_the_safety_figures_are_the_firmware_s():
    from pump.core import alarms
    from pump.core import limits as lim

    text = " ".join(_section("## Safety").split())
    assert "per rolling hour (default %d U" % (lim.MAX_HOUR_DEFAULT_MU // 1000) in text
    assert "per day (%d U)" % (lim.MAX_DAY_DEFAULT_MU // 1000) in text
    assert "auto-off after %d-%d h without a key press (default %d h, 0 = off)" % (
        lim.AUTO_OFF_MIN_H, lim.AUTO_OFF_MAX_H, lim.AUTO_OFF_DEFAULT_H) in text
    assert "low-reservoir alert (%d-%d U, default %d U)" % (
        lim.LOW_LEVEL_MIN_MU // 1000, lim.LOW_LEVEL_MAX_MU // 1000,
        lim.LOW_LEVEL_DEFAULT_MU // 1000) in text
    assert "within 2 min" in text and alarms.RESOUND_MS == 120_000
    assert "every 15 min while suspended" in text and alarms.SUSPEND_REMINDER_MS == 15 * 60_000


def test_the_step_volume_the_readme_gives_is_the_board_s():
    import importlib.util

    from pump.core.units import step_volume_pl

    spec = importlib.util.spec_from_file_location(
        "readme_board", os.path.join(ROOT, "boards", "pico_default.py"))
    board = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(board)
    m = board.MECHANICS
    pl = step_volume_pl(m["lead_um"], m["full_steps_per_rev"], m["microsteps"],
                        m["syringe_inner_diameter_um"])
    text = _section("## Hardware")
    assert "**%.3f nL**" % (pl / 1000) in text and "**%s mU**" % ("%g" % (pl / 10_000)) in text
    assert "about %d microsteps per unit" % round(1_000_000 / (pl / 10)) in text


@pytest.mark.parametrize("line", [c for c in commands() if c.startswith("make ")])
def test_every_make_command_in_the_readme_names_a_target_and_sim_arguments_parse(line):
    import simulate

    makefile = open(os.path.join(ROOT, "Makefile")).read()
    words = shlex.split(line)
    assert re.search(r"^%s:" % re.escape(words[1]), makefile, re.M), line
    for word in words[2:]:
        if word.startswith("ARGS=") and words[1] == "sim":
            args = shlex.split(word[len("ARGS="):])
            simulate.build_parser().parse_args([a for a in args if a != "[--quiet]"])


@pytest.mark.slow
def test_the_screen_gallery_in_docs_is_what_make_screens_draws_today(tmp_path):
    """docs/screens/ (the README's gallery) must be today's screens: `make screens
    UPDATE_DOCS=1` after any change to a screen."""
    import glob

    from PIL import Image

    import scenario

    shown = set(re.findall(r"\(docs/screens/([\w-]+\.png)\)", README))
    assert shown
    drawn = {}
    for path in sorted(glob.glob(os.path.join(TOOLS, "scenarios", "screens", "*.toml"))):
        out = tmp_path / os.path.basename(path)
        scenario.run(scenario.load(path)).write(str(out))
        for png in out.glob("*.png"):
            drawn[png.name] = png
    assert shown <= set(drawn), shown - set(drawn)
    stale = []
    for name, png in sorted(drawn.items()):
        kept = os.path.join(ROOT, "docs", "screens", name)
        if not os.path.exists(kept):
            stale.append(name + " (missing)")
            continue
        with Image.open(png) as new, Image.open(kept) as old:
            new_rgb, old_rgb = new.convert("RGB"), old.convert("RGB")
            if new_rgb.size != old_rgb.size or new_rgb.tobytes() != old_rgb.tobytes():
                stale.append(name)
    assert not stale, "stale in docs/screens (run make screens UPDATE_DOCS=1): %s" % stale
