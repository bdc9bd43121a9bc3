"""The servicer's web side: the operator dashboard (page, JSON API, self-contained report) and
the snapshot it is drawn from (U1, U2).
"""
