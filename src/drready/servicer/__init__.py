"""The DR servicer (aggregator): registry, portfolio potential, dispatch, command-value
following with a battery, baseline settlement, storage and dashboard (U1, U2, D3, D5, D6).

The servicer runs the OpenADR 3.1 VTN and talks to every resource through it as the BL; route i
(home gateways speaking ECHONET Lite downstream) and route ii (maker clouds) reach it the same
way. ``drready servicer run`` (:mod:`drready.servicer.run`) is the aggregator's long-running
service: the BL (:mod:`~drready.servicer.service`) carrying the orders of its north-bound API
(:mod:`~drready.servicer.orders`, :mod:`~drready.servicer.web.api`) on a schedule
(:mod:`~drready.servicer.core.schedule`), settling them from meter data
(:mod:`~drready.servicer.settling`), with metrics (:mod:`~drready.servicer.metrics`) and
structured logs (:mod:`~drready.servicer.logs`). See ``docs/architecture.md``.
"""
