"""KV memory reports: markdown tables and pictures, from the dicts the simulator and the engine write."""
