"""Physical constants of the consistency checks and spectra (SI units).

Values as in WeatherBench 2 and ECMWF IFS documentation; the same as
:mod:`pipeline.synthetic_upper` uses to build its balanced fields.
"""

G0 = 9.80665  # standard gravity, m s-2
R_DRY = 287.05  # gas constant of dry air, J kg-1 K-1
OMEGA = 7.292e-5  # Earth's rotation rate, s-1
EARTH_RADIUS = 6_371_000.0  # mean Earth radius, m
VIRTUAL_FACTOR = 0.608  # virtual temperature T_v = T (1 + 0.608 q)
