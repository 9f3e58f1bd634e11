"""The edge rig (real Mosquitto, gateway, simulator, store) for the reliability tests."""

from tests.edge.conftest import rig, site

__all__ = ["rig", "site"]
