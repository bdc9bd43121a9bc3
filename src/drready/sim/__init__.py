"""Scenarios and simulation: stochastic households executing plans, fleets, the demo (U2, E1)."""
