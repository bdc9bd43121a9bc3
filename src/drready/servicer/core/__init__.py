"""The servicer's pure core: portfolio potential, dispatch, command following, baseline,
settlement and the running service's schedule (U1, U2, D3, D5). Functions over pydantic models
and numpy arrays; no storage, no I/O, no HTTP, no clock of their own, so each is tested against
hand-computed cases in milliseconds.
"""
