"""Recordings kept by a process with a page (the agent's kiosk, a teller's console): chunks
from the page's MediaRecorder spooled under the state directory, closed with their
transaction reference, uploaded to the server's store by a resumable, content-hashed
upload. ``recorder.js`` is the page side, served by both pages."""
