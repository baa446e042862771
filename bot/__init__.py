"""Dongxian bot runtime: adapters, dispatcher, outbox relay and the command line."""
