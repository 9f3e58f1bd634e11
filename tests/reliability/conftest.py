"""The edge rig (real Mosquitto, gateway, simulator, store) and the MCP runtime for the
reliability tests."""

from tests.edge.conftest import rig, site
from tests.mcp_server.conftest import broker, runtime

__all__ = ["broker", "rig", "runtime", "site"]
