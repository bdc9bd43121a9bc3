"""The VTN's API routers, one per OpenADR 3.1 resource path (C1)."""
