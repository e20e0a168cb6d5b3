"""siliconlab: run a transformer on the fastest compute unit of the machine it is on."""

__version__ = "0.1.0"
