"""Fake platform servers that speak the real wire protocols on 127.0.0.1."""
