"""The built-in generators, registered in :data:`generators.base.GENERATORS` by importing them.

Code that looks a generator up by name imports ``GENERATORS`` from here, so the built-in
kinds (``"flow_matching"``, ``"edm"``) are always registered before the lookup.
"""

from generators.base import GENERATORS
from generators.diffusion import EDM, EDMConfig
from generators.flow_matching import FlowMatching, FlowMatchingConfig

__all__ = ["EDM", "GENERATORS", "EDMConfig", "FlowMatching", "FlowMatchingConfig"]
