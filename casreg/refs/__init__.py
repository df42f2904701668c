"""Refs: names for versions and checkpoints, moved by compare-and-swap with a reflog."""

from .container import ANY, RefContainer
from .names import check_ref_name

__all__ = ["ANY", "RefContainer", "check_ref_name"]
