"""The model layer: configs, layers, architectures, and loading checkpoints into them."""
