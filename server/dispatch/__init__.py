"""Dispatch core: branches, tellers and lobby managers, cross-branch tasks, video-teller calls.

``schema`` / ``call_schema`` (tables), ``model`` (plain records), ``routing`` (pure
decisions), ``store`` (rows and the transaction), ``queue`` (the branch queues and free
tellers, shared by tasks and calls), ``tasks`` and ``calls`` (the operations, one module per
role), ``validate`` and ``boundary`` (field checks; the gRPC and TerminalLink edge),
``servicer`` / ``call_servicer`` (thin gRPC layers), ``capability`` (how the server plugs
them in).
"""
