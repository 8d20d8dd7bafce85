"""Corporate cheque-book sale at the terminal (issue 15): the journaled purchase engine.

docs/flows/cheques.md is the contract with the server; this package is the terminal's side.
"""
