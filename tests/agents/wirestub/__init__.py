"""Loopback HTTP stub servers speaking the OpenAI and Gemini wire protocols (and anything else
a test scripts), for testing real SDKs and HTTP clients without network.

``WireStub`` is the server, ``Reply`` a scripted response; ``openai_wire`` and ``gemini_wire``
build the providers' bodies.
"""

from tests.agents.wirestub import gemini_wire, openai_wire
from tests.agents.wirestub.server import RecordedRequest, Reply, WireStub

__all__ = ["RecordedRequest", "Reply", "WireStub", "gemini_wire", "openai_wire"]
