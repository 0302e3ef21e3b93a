"""Plunger force and line pressure from raw load-cell samples, and the sensor fault rules.

Forces are integer milli-newtons (mN), pressures integer pascals (Pa), time the
caller's milliseconds (now_ms). A raw sample is what the board's force driver returns:
signed HX711 counts, or the averaged ADC reading of a force-sensing resistor.
"""

# Fault codes: each is raised as its own alarm.
NO_DATA = "sensor_no_data"  # the converter stopped delivering samples
STUCK = "sensor_stuck"  # the same raw reading too many times in a row
RANGE = "sensor_range"  # a saturation code or a force no plunger can produce

# HX711 codes for an input beyond full scale; a real reading never equals them.
HX711_RAW_MIN = -0x800000
HX711_RAW_MAX = 0x7FFFFF

# Typical bar load cells (rated output 1.0 mV/V) on an HX711, channel A, gain 128. Full
# scale is +-0.5 * AVDD / 128 for 2**23 counts and the bridge gives 1.0 mV/V * AVDD at the
# rated load, so the excitation cancels: counts/N = 2**23 * 256 * 0.001 / rated newtons.
LOAD_CELL_5KG_RATED_MN = 49_033  # 5 kg * 9.80665 m/s^2
LOAD_CELL_5KG_COUNTS_PER_N = 43_797  # 2**23 * 0.256 / 49.033 N
LOAD_CELL_1KG_RATED_MN = 9_807
LOAD_CELL_1KG_COUNTS_PER_N = 218_986
# A pusher only pushes: a force below -10 % of the rating means the zero drifted (zero
# balance of these cells is +-0.1 mV/V, i.e. 10 % of full output) or the bridge is miswired.
NEGATIVE_MARGIN_PERCENT = 10

# A live HX711 at gain 128 has tens of counts of noise (90 nV rms at 80 samples/s):
# eight equal readings in a row do not happen by chance.
HX711_STUCK_SAMPLES = 8
NO_DATA_PERIODS = 3  # conversion periods without data before NO_DATA
CLEAR_SAMPLES = 10  # good samples in a row that clear a fault

# pi as 355/113, as in units.py.
_PI_NUM = 355
_PI_DEN = 113


def muldiv(a, b, c):
    """floor(a * b / c) for c > 0, keeping intermediates small: r * b stays below c * b."""
    q, r = divmod(a, c)
    return q * b + r * b // c


def plunger_area_um2(inner_diameter_um):
    """Syringe bore area in square micrometres, rounded: pi * d^2 / 4."""
    den = 4 * _PI_DEN
    return (_PI_NUM * inner_diameter_um * inner_diameter_um + den // 2) // den


def pressure_pa(force_mn, area_um2):
    """Pressure on the plunger face in pascals: 1 mN on 1 mm^2 is 1000 Pa (floor)."""
    return force_mn * 1_000_000_000 // area_um2


class LoadCellCalibration:
    """Linear raw -> force: (raw - offset_counts) / counts_per_n newtons.

    counts_per_n up to about 500 000 keeps the arithmetic in small ints. `raw_min` and
    `raw_max` bound the readings a working converter gives (the saturation codes are not).
    """

    def __init__(
        self,
        offset_counts,
        counts_per_n,
        raw_min=HX711_RAW_MIN + 1,
        raw_max=HX711_RAW_MAX - 1,
    ):
        if type(counts_per_n) is not int or counts_per_n == 0:
            raise ValueError("counts_per_n must be a non-zero integer, got %r" % (counts_per_n,))
        self.offset_counts = offset_counts
        self.counts_per_n = counts_per_n
        self.raw_min = raw_min
        self.raw_max = raw_max

    def force_mn(self, raw):
        """Force in milli-newtons, rounded to the nearest."""
        cpn = self.counts_per_n
        delta = raw - self.offset_counts
        if cpn < 0:
            cpn = -cpn
            delta = -delta
        # round(delta * 1000 / cpn) without the big product: divmod floors, r >= 0.
        q, r = divmod(delta, cpn)
        return q * 1000 + (r * 2000 + cpn) // (2 * cpn)

    def tare(self, raw):
        """Take `raw` (say, the mean of a few unloaded samples) as zero force."""
        self.offset_counts = raw


class TableCalibration:
    """Piecewise-linear raw -> force through ((raw, mN), ...) points with rising raw.

    For sensors that are not linear, such as a force-sensing resistor in a divider.
    Readings beyond the first or last point read as that point's force.
    """

    def __init__(self, points, raw_min, raw_max):
        if len(points) < 2:
            raise ValueError("a calibration table needs at least two points")
        last = None
        for raw, _mn in points:
            if last is not None and raw <= last:
                raise ValueError("calibration table raw values must rise, got %r" % (points,))
            last = raw
        self.points = points
        self.raw_min = raw_min
        self.raw_max = raw_max

    def force_mn(self, raw):
        points = self.points
        r0, f0 = points[0]
        if raw <= r0:
            return f0
        for r1, f1 in points:
            if raw <= r1:
                return f0 + muldiv(raw - r0, f1 - f0, r1 - r0)
            r0, f0 = r1, f1
        return f0


class PressureSensor:
    """Judges each raw sample and turns the good ones into force and pressure.

    Call `sample(now_ms, raw)` for each conversion read and `no_data(now_ms)` when the
    driver had none ready. `fault` is None or the code of the latest fault; it stays set
    until `clear_samples` good samples in a row have arrived, and meanwhile `sample()`
    returns None. `stuck_samples` 0 turns the stuck rule off (see `for_fsr`).
    """

    def __init__(
        self,
        calibration,
        period_ms,
        min_mn,
        max_mn,
        stuck_samples=HX711_STUCK_SAMPLES,
        clear_samples=CLEAR_SAMPLES,
        no_data_ms=0,
        area_um2=0,
    ):
        if period_ms <= 0 or clear_samples < 1 or min_mn >= max_mn:
            raise ValueError("PressureSensor: bad period, clear count or force limits")
        self.calibration = calibration
        self.period_ms = period_ms
        self.no_data_ms = no_data_ms or NO_DATA_PERIODS * period_ms
        self.min_mn = min_mn
        self.max_mn = max_mn
        self.stuck_samples = stuck_samples
        self.clear_samples = clear_samples
        self.area_um2 = area_um2
        self.fault = None
        self.faults_raised = 0  # fault onsets (a change of code counts again)
        self.force_mn = None  # last good force
        self.raw = None  # last raw sample, good or not
        self.samples = 0
        self._same_run = 0
        self._good_run = 0
        self._last_data_ms = None

    @classmethod
    def for_load_cell(cls, calibration, period_ms, rated_mn, **kw):
        """Range: -10 % .. 100 % of the cell's rated load."""
        low = -(rated_mn * NEGATIVE_MARGIN_PERCENT // 100)
        return cls(calibration, period_ms, low, rated_mn, **kw)

    @classmethod
    def for_fsr(cls, calibration, period_ms, max_mn, **kw):
        """No stuck rule: an averaged 12-bit ADC reading legitimately repeats, and an
        unloaded FSR reads a steady value. A failed FSR lead reads open or shorted,
        which the raw range (the table's raw_min / raw_max) catches instead."""
        kw["stuck_samples"] = 0
        return cls(calibration, period_ms, 0, max_mn, **kw)

    def reset(self, now_ms, settle_ms=0):
        """Start watching afresh (after power-up): no data is expected for settle_ms."""
        self._last_data_ms = now_ms + settle_ms
        self._same_run = 0
        self.raw = None

    def _judge(self, raw):
        cal = self.calibration
        if raw < cal.raw_min or raw > cal.raw_max:
            return RANGE, 0
        force = cal.force_mn(raw)
        if force < self.min_mn or force > self.max_mn:
            return RANGE, force
        if self.stuck_samples and self._same_run >= self.stuck_samples:
            return STUCK, force
        return None, force

    def _raise(self, code):
        if self.fault != code:
            self.fault = code
            self.faults_raised += 1
        self._good_run = 0

    def sample(self, now_ms, raw):
        """Judge one raw sample: the force in mN, or None while the sensor is faulted."""
        self._last_data_ms = now_ms
        self.samples += 1
        self._same_run = self._same_run + 1 if raw == self.raw else 1
        self.raw = raw
        code, force = self._judge(raw)
        if code is not None:
            self._raise(code)
            return None
        if self.fault is not None:
            self._good_run += 1
            if self._good_run < self.clear_samples:
                return None
            self.fault = None
        self.force_mn = force
        return force

    def no_data(self, now_ms):
        """The driver had no sample ready: a fault once none came for no_data_ms."""
        last = self._last_data_ms
        if last is None:
            self._last_data_ms = now_ms
        elif now_ms - last > self.no_data_ms:
            self._raise(NO_DATA)

    def pressure_pa(self):
        """Pressure from the last good force (area_um2 must be set), or None."""
        if self.force_mn is None or not self.area_um2:
            return None
        return pressure_pa(self.force_mn, self.area_um2)
