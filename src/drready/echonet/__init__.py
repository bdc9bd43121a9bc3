"""ECHONET Lite: sans-IO frame codec, property maps and MRA-driven property values (C1)."""
