"""The site simulator: device twins driven by the site profiles, with fault injection."""

from edge.sim.faults import Fault, FaultControl, Scenario, load_scenario
from edge.sim.simulator import SiteSimulator

__all__ = ["Fault", "FaultControl", "Scenario", "SiteSimulator", "load_scenario"]
