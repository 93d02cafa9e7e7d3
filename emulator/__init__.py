"""vemu: where a server's cycles go under virtualization, and what offload buys back."""
__version__ = "0.1.0"
