"""The compatibility matrix of third-party OpenADR 3 clients against ``drready vtn serve``."""
