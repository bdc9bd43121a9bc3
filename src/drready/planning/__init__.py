"""Planning: baseline boil-up plan, DR potential (F1) and DR-aware re-plan (F3).

Two implementations of the same problem (:mod:`drready.planning.problem`): the fast vectorised
path over many units (:mod:`drready.planning.fast`, :mod:`drready.planning.engine`) and an exact
per-unit LP solved by HiGHS (:mod:`drready.planning.reference`) that checks it.
"""
