"""Scripts run by the tests inside other interpreters (independent peers)."""
