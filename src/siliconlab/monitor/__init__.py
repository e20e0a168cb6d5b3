"""Device monitors (energy, memory) that the bench can attach to a timed run."""
