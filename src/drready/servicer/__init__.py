"""The DR servicer (aggregator): registry, portfolio potential, dispatch, command-value
following with a battery, baseline settlement, storage and dashboard (U1, U2, D3, D5, D6).

The servicer runs the OpenADR 3.1 VTN and talks to every resource through it as the BL; route i
(home gateways speaking ECHONET Lite downstream) and route ii (maker clouds) reach it the same
way. See ``docs/architecture.md``.
"""
