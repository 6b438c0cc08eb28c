"""Actuators: how a decision reaches the cluster (`kubernetes`, `webhook`, `none`), behind one interface."""
