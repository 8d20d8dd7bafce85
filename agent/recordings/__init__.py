"""Recordings on the terminal: chunks from the page kept durably under the state directory,
closed with their transaction reference (SHA-256 into the e-journal), uploaded to the
server's store by a resumable, content-hashed upload."""
