"""drready — open reference implementation of the DR-ready heat pump water heater ecosystem.

The device side (a water heater that declares its DR potential, accepts DR requests, re-plans its
heating and reports back), the manufacturer cloud and the DR servicer. Requirement IDs (F1–F6,
C1, S1, U1–U2, D1–D6, E1) refer to ``docs/requirements`` of the project.
"""

__version__ = "0.1.0"
