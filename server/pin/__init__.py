"""PIN verification: the HSM, the PIN verifier and customer sessions, the PIN translator
for tellers, and ``pin_verify`` on the TerminalLink stream."""
