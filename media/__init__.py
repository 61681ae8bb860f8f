"""Uploaded images as their users see them: key rules and image types (``media.keys``), the
``MediaStore`` port and its in-memory twin (``media.store``). Imports no other package of ours;
the gateway, the scan handler and the chat graph import it, ``infra`` supplies the adapters.
"""
