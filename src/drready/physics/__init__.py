"""Physics of a CO2 heat pump water heater (EcoCute): tank, heat pump, bath keep-warm, climate and
hot-water draws, calibrated to the national energy calculation method for houses.

Pure, vectorised numpy functions over units × time (no I/O, no state). They serve the DR
potential (F1), the DR-aware plan (F3) and the evaluation method (E1).
"""
