"""The package version, importable without importing the package itself (which loads the API)."""

__version__ = "0.1.0"
