"""The control loop: decide for every managed target on its cadence, act according to its mode."""
