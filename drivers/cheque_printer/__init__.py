"""Cheque printer over IPP (RFC 8011): pyipp client, leaf PDFs, feeder OCR check, presenter."""
