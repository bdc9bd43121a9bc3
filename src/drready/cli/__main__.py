"""``python -m drready.cli``: the ``drready`` command (see :mod:`drready.cli`)."""

from drready.cli import main

main()
