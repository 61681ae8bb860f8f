"""Test helpers for the chat: wire payloads of the live APIs (served by the loopback
``WireStub`` of ``tests.agents.wirestub``) and in-memory twins that record and misbehave."""
