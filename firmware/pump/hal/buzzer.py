"""Piezo buzzer on a PWM pin: alarm sounds by priority, key beeps and the self-test tone.

The sounds follow the pulse pattern of IEC 60601-1-8 (figures recalled, not taken
from the standard's text): a high-priority burst is 10 pulses grouped 3 + 2, pause,
3 + 2; medium is 3 pulses; low is 2. Pulses last 75-200 ms (high) or 125-250 ms
(medium, low); spacing is 50-125 ms (high) or 125-250 ms; the pause within a high
burst 0.35-1.3 s; bursts repeat every 2.5-15 s (high), 2.5-30 s (medium), over 15 s
(low). Nothing blocks: the main loop calls ``update(now_ms)``, which switches the
sound on or off when due and says when it wants to be called again.
"""

from micropython import const

LOW = const(1)
MEDIUM = const(2)
HIGH = const(3)

_ALARM_HZ = const(880)  # fundamental 150-1000 Hz; a square wave adds the harmonics
_BEEP_HZ = const(2700)  # near a small piezo's resonance: loud for a short click
_DUTY_ON = const(32768)  # 50 %: the loudest square wave
_DUTY_OFF = const(0)

_H_ON = const(150)  # high-priority pulse
_H_GAP = const(100)  # spacing within a group
_H_GROUP = const(350)  # 2 x spacing + pulse, between pulses 3 and 4 (and 8 and 9)
_H_PAUSE = const(1000)  # between pulses 5 and 6
_H_REPEAT = const(3000)  # after the 10th pulse, before the next burst
_M_ON = const(200)  # medium and low pulses and their spacing
_M_GAP = const(200)
_M_REPEAT = const(5000)
_L_REPEAT = const(20000)

# (on_ms, off_ms) per pulse; the last off_ms is the silence before the burst repeats.
HIGH_PATTERN = (
    (_H_ON, _H_GAP),
    (_H_ON, _H_GAP),
    (_H_ON, _H_GROUP),
    (_H_ON, _H_GAP),
    (_H_ON, _H_PAUSE),
    (_H_ON, _H_GAP),
    (_H_ON, _H_GAP),
    (_H_ON, _H_GROUP),
    (_H_ON, _H_GAP),
    (_H_ON, _H_REPEAT),
)
MEDIUM_PATTERN = ((_M_ON, _M_GAP), (_M_ON, _M_GAP), (_M_ON, _M_REPEAT))
LOW_PATTERN = ((_M_ON, _M_GAP), (_M_ON, _L_REPEAT))
BEEP_PATTERN = ((30, 0),)  # key feedback, once
SELF_TEST_PATTERN = ((300, 0),)  # power-on tone, once

_PATTERNS = (None, LOW_PATTERN, MEDIUM_PATTERN, HIGH_PATTERN)
_BEEP = const(-1)  # the one-shot sounds in the priority slot
_SELF_TEST = const(-2)


class Buzzer:
    """Plays one sound at a time on ``pwm``; duty 0 is silence."""

    def __init__(self, pwm, alarm_hz=_ALARM_HZ, beep_hz=_BEEP_HZ, duty_u16=_DUTY_ON):
        self._pwm = pwm
        self.alarm_hz = alarm_hz
        self.beep_hz = beep_hz
        self._duty = duty_u16
        self._pattern = None
        self._sound = 0  # LOW/MEDIUM/HIGH, _BEEP, _SELF_TEST; 0 when silent
        self._repeat = False
        self._index = 0
        self._on = False
        self._started = False
        self._next_ms = 0
        self._hz = alarm_hz
        pwm.duty_u16(_DUTY_OFF)

    # ----- what to play (main loop) ------------------------------------------------

    def play(self, priority):
        """Sound the alarm pattern of a priority until stop(); playing it already changes
        nothing, another priority replaces the current sound at the next update()."""
        if priority not in (LOW, MEDIUM, HIGH):
            raise ValueError("buzzer priority must be LOW, MEDIUM or HIGH, got %r" % (priority,))
        if self._sound == priority:
            return
        self._begin(priority, _PATTERNS[priority], True, self.alarm_hz)

    def follow(self, level):
        """Play what the alarm manager asks for (AlarmManager.sound(now): 0 is silence); a
        beep or the self-test tone in progress is left to finish."""
        if level:
            self.play(level)
        elif self._sound > 0:
            self.stop()

    def beep(self):
        """A short click for key feedback; ignored while an alarm sounds. True if it beeps."""
        if self._sound > 0:
            return False
        self._begin(_BEEP, BEEP_PATTERN, False, self.beep_hz)
        return True

    def self_test_tone(self):
        """The power-on tone, at the alarm frequency; replaces any sound."""
        self._begin(_SELF_TEST, SELF_TEST_PATTERN, False, self.alarm_hz)

    def stop(self):
        """Silence at once."""
        self._pwm.duty_u16(_DUTY_OFF)
        self._pattern = None
        self._sound = 0
        self._on = False

    def playing(self):
        """LOW, MEDIUM or HIGH while an alarm pattern plays, else None."""
        return self._sound if self._sound > 0 else None

    def busy(self):
        """True while any sound (alarm, beep, self-test tone) is in progress."""
        return self._pattern is not None

    def driven(self):
        """True while a tone sounds and the PWM reads back its frequency and duty (1 %)."""
        if not self._on:
            return False
        pwm = self._pwm
        hz = pwm.freq()
        duty = pwm.duty_u16()
        return abs(hz - self._hz) * 100 <= self._hz and abs(duty - self._duty) * 100 <= self._duty

    def _begin(self, sound, pattern, repeat, hz):
        self._pwm.duty_u16(_DUTY_OFF)
        self._pwm.freq(hz)
        self._hz = hz
        self._pattern = pattern
        self._sound = sound
        self._repeat = repeat
        self._index = 0
        self._on = False
        self._started = False

    # ----- timing (main loop, allocation-free) -------------------------------------

    def update(self, now_ms):
        """Switch the sound when due; return ms until the next change, or None when silent.

        Each phase is timed from when it really began, so a late call lengthens
        that one phase and never squeezes the next ones."""
        pattern = self._pattern
        if pattern is None:
            return None
        if self._started:
            left = self._next_ms - now_ms
            if left > 0:
                return left
        self._started = True
        if not self._on:
            self._on = True
            self._pwm.duty_u16(self._duty)
            self._next_ms = now_ms + pattern[self._index][0]
            return pattern[self._index][0]
        self._on = False
        self._pwm.duty_u16(_DUTY_OFF)
        off_ms = pattern[self._index][1]
        self._index += 1
        if self._index == len(pattern):
            if not self._repeat:
                self._pattern = None
                self._sound = 0
                return None
            self._index = 0
        self._next_ms = now_ms + off_ms
        return off_ms
