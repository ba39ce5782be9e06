"""The one set of latency key names (every stage and target reads them from here).

``Forward Propagate`` and ``Total Inference Time`` are timed around each call; ``Layers Time``
is the sum of the per-layer times a runtime's own profiler reports. Their exact definition
per target is in ``docs/design.md``.
"""

FORWARD_PROPAGATE = "Forward Propagate"
TOTAL_INFERENCE = "Total Inference Time"
LAYERS_TIME = "Layers Time"
LATENCY_KEYS = (FORWARD_PROPAGATE, TOTAL_INFERENCE, LAYERS_TIME)
UNIT = "us"

# The reserved table row of the per-network constant (docs/design.md, "The per-network constant"):
# what one whole-network call costs on top of its modules (call overhead, input and output
# copies), measured in every host module session on a null network (the network's input shape
# in, its output shape out, no compute). Accumulation adds it once per network.
NETWORK_CONSTANT_UID = "@network"
# The drift reference of a networks session: the space's first (fixed) block, built again beside
# the sampled networks and measured with them, so ``profiler fit --normalise`` can compare the
# machine's speed in the network session with the module session (where that block is a module).
REFERENCE_UID = "@reference"

__all__ = ["FORWARD_PROPAGATE", "LATENCY_KEYS", "LAYERS_TIME", "NETWORK_CONSTANT_UID", "REFERENCE_UID", "TOTAL_INFERENCE", "UNIT"]
