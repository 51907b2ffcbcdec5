"""The lab picture: a snapshot of the lab's parts and their health, drawn as SVG."""

from stackcheck.picture.model import Snapshot
from stackcheck.picture.probe import gather
from stackcheck.picture.svg import render

__all__ = ["Snapshot", "gather", "render"]
