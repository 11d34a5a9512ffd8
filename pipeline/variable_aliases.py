"""Producers' variable names (WeatherBench 2 and ARCO ERA5, cfgrib, NCEP, CMIP) and the
canonical names they are read as (:mod:`pipeline.schema`), for
:func:`pipeline.normalize.normalize` and the checks of what a user asks for
(:mod:`pipeline.normalize_select`)."""

from __future__ import annotations

#: Producer variable names -> canonical names. A pair is (upper-air name, surface name),
#: chosen by whether the variable has a pressure-level dimension.
VARIABLE_ALIASES: dict[str, str | tuple[str, str]] = {
    # WeatherBench 2 / ARCO ERA5
    "2m_temperature": "t2m",
    "2m_dewpoint_temperature": "d2m",
    "sea_surface_temperature": "sst",
    "mean_sea_level_pressure": "msl",
    "surface_pressure": "sp",
    "10m_u_component_of_wind": "u10",
    "10m_v_component_of_wind": "v10",
    "total_precipitation": "tp",
    "total_column_water_vapour": "tcwv",
    "geopotential": "z",
    "geopotential_height": "gh",
    "temperature": "t",
    "u_component_of_wind": "u",
    "v_component_of_wind": "v",
    "vertical_velocity": "w",
    "specific_humidity": "q",
    "relative_humidity": "r",
    # cfgrib spellings that differ from the canonical ones
    "2t": "t2m",
    "10u": "u10",
    "10v": "v10",
    "prmsl": "msl",
    # NCEP reanalysis
    "air": ("t", "t2m"),
    "hgt": "gh",
    "uwnd": ("u", "u10"),
    "vwnd": ("v", "v10"),
    "shum": "q",
    "rhum": "r",
    "omega": "w",
    "slp": "msl",
    "mslp": "msl",
    "pres": "sp",
    # CMIP
    "tas": "t2m",
    "psl": "msl",
    "ps": "sp",
    "uas": "u10",
    "vas": "v10",
    "ta": "t",
    "ua": "u",
    "va": "v",
    "zg": "gh",
    "hus": "q",
    "hur": "r",
    "wap": "w",
    "pr": "tp",
}
