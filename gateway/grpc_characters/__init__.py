"""The character service over gRPC: ``.proto``, generated modules, servicer/server and client.

``characters_pb2*.py`` are generated (see the command at the top of ``characters.proto``) and
committed; they are excluded from ruff and mypy.
"""
