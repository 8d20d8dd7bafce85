"""The PIN verification capability.

With ``--hsm`` it opens the HSM once and provides, for the capabilities after it:

- ``hsm``: the HSM backend (closed on shutdown);
- ``pin_verifier``: card + PIN block -> verified, opening a customer session (its
  ``sessions`` check the tokens statements and the tube accept);
- ``pin_translator``: a PIN block a teller asks for, re-enciphered from the PIN pad's DUKPT
  key to the teller side's zone PIN key (ISO 9564 format 0).

Without an HSM all three are None and ``pin_verify`` is refused as ``hsm_unavailable``.
"""

from __future__ import annotations

import logging
from typing import cast

from branchline.common.logs import log_event
from branchline.server.capability import Hub, StartupError
from branchline.server.dispatch import calls
from branchline.server.hsm import Hsm, HsmError, open_hsm
from branchline.server.ledger.hsm_check import hsm_pin_check
from branchline.server.ledger.pan_token import PanTokenizer
from branchline.server.ledger.pin_service import PinSettings, PinVerifier
from branchline.server.metrics.instruments import MeteredHsm
from branchline.server.pin.link import pin_verify_handler

log = logging.getLogger("branchline.server.pin")


def build_pin_translator(hsm: Hsm, bdk: str, zpk: str) -> calls.PinTranslator:
    def translate(
        pan: str, pin_block: bytes, ksn: bytes, pin_format: int
    ) -> tuple[bytes, int, str]:
        try:
            return hsm.translate_pin_dukpt_to_zpk(bdk, ksn, pin_block, pan, zpk, 0), 0, zpk
        except HsmError as exc:
            log_event(log, "pin_translation_failed", logging.WARNING, code=exc.code)
            raise calls.TranslationFailed(
                exc.code, f"the HSM refused the translation: {exc}"
            ) from None

    return translate


class PinCapability:
    name = "pin"

    def setup(self, hub: Hub) -> None:
        settings = hub.settings
        verifier: PinVerifier | None = None
        translator: calls.PinTranslator | None = None
        hsm: Hsm | None = None
        if settings.hsm_url is not None:
            try:
                hsm = open_hsm(settings.hsm_url)
                tokenizer = PanTokenizer.from_file(settings.pan_token_key)
            except (HsmError, OSError, ValueError) as exc:
                if hsm is not None:
                    hsm.close()
                raise StartupError(f"--hsm: {exc}") from None
            hub.on_stop(hsm.close)
            metrics = hub.optional("metrics")
            if metrics is not None:
                hsm = cast(Hsm, MeteredHsm(hsm, metrics))
            verifier = PinVerifier(
                hub.engine,
                tokenizer,
                hsm_pin_check(hsm, settings.bdk_name),
                PinSettings(settings.pin_try_limit),
            )
            translator = build_pin_translator(hsm, settings.bdk_name, settings.teller_zpk)
        hub.provide("hsm", hsm)
        hub.provide("pin_verifier", verifier)
        hub.provide("pin_translator", translator)
        hub.handle("pin_verify", pin_verify_handler(verifier, hub.link.applier))


PIN = PinCapability()
