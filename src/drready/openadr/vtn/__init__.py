"""The DR servicer's OpenADR 3.1 VTN (C1: route ii northbound interface; S1: TLS, OAuth2
client credentials, object privacy; D6: ven/resource groups and targeting).

Public API: :func:`create_app` (the FastAPI app factory), :class:`VtnSettings`,
:class:`Notifier` / :class:`NullNotifier` (the change hook) and :func:`run` (uvicorn with TLS).
"""

from drready.openadr.vtn.app import create_app
from drready.openadr.vtn.notify import Notifier, NullNotifier
from drready.openadr.vtn.server import run
from drready.openadr.vtn.settings import VtnSettings

__all__ = ["Notifier", "NullNotifier", "VtnSettings", "create_app", "run"]
