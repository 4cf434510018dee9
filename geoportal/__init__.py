"""geoportal: a city's map-service and open-data portal in one Python program."""

__version__ = "0.1.0"
