"""Recordings: resumable content-hashed uploads, a content-addressed store, retention and
audited viewing (issue 14)."""
