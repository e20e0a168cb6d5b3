"""The package version, on its own so every layer can stamp it without importing the package face (`load`)."""

__version__ = "0.1.0"
