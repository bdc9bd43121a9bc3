"""OpenADR 3.1: wire models, spec access, VTN, VEN client and domain profile (C1, D1, D6)."""
