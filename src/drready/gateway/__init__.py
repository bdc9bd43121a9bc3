"""Home gateway (route i): ECHONET Lite downstream, domain operations F1–F6 upstream (C1, D1).

The upstream OpenADR 3.1 VEN arrives with the OpenADR issue; it will call the domain-level
methods of :class:`drready.gateway.home.WaterHeaterLink`, never the ECHONET Lite frames.
"""
