"""Dispatch core: branches, tellers and lobby managers, cross-branch tasks, video-teller calls.

``schema`` (tables), ``model`` (plain records), ``routing`` (pure decisions), ``service``
(state changes as transactions over an Engine), ``servicer`` (thin gRPC layer).
"""
