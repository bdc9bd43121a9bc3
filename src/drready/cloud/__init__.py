"""The maker cloud (route ii): a fleet of units behind one OpenADR 3.1 VEN (F1–F6, C1, D6)."""
