"""Tether: RLHF as a maintained system rather than a one-off training run."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tether-rlhf")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"
