"""The application layer: a machine assembled from its parts, remote commands, and the main loop."""
