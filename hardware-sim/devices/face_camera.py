"""The simulated kiosk face module (visible + infrared), on the Branchline face-module
command set (docs/protocols/face-camera.md).

Answers STATUS, GET_INFO, CAPTURE and SELF_TEST. A capture returns the scene in front of the
camera (``branchline.sim.face_scenes``: real photographs) with the module's liveness and
quality; nothing in front of it is a capture timeout.

Actions: ``present {scene: live|photo|no_face|two_faces, person, index, other, yaw}``,
``clear``, ``list_people``. Faults: ``sensor_fault`` (the visible sensor is dead: status
flags it, captures and self-test answer SENSOR_FAULT), ``ir_fault`` (no infrared: captures
still work with liveness unavailable, self-test answers IR_FAULT), ``bad_crc`` (the next
reply's CRC is corrupted, once).
"""

from __future__ import annotations

import logging
from pathlib import Path

from branchline.common.logs import log_event
from branchline.drivers.face_camera.capture import (
    Capture,
    Liveness,
    ModuleStatus,
    Quality,
    decode_capture_request,
    encode_capture,
    encode_status,
    encode_texts,
)
from branchline.drivers.face_camera.frames import (
    Command,
    Frame,
    FrameDecoder,
    Malformed,
    Result,
    encode_frame,
)
from branchline.sim.devices.base import SimError, SimulatedDevice
from branchline.sim.face_scenes import PEOPLE, SCENES, Scene, make_scene

log = logging.getLogger("branchline.sim.face_camera")

FAULTS = ("sensor_fault", "ir_fault", "bad_crc")
LIVE_SCORE = 0.962  # what the module's IR check gives a live face
PAPER_SCORE = 0.071  # ... and a print
INFO = ("BL-FCM-2", "SIM0001", "2.4.1")


def _choice(params: dict[str, str], key: str, choices: tuple[str, ...], action: str) -> str:
    value = params.get(key, "")
    if value not in choices:
        got = f"unknown {key} {value!r}" if value else "required"
        raise SimError(f"{action}: {key}: {got}; one of {', '.join(choices)}")
    return value


class SimulatedFaceCamera(SimulatedDevice):
    name = "face_camera"
    faults_available = FAULTS

    def __init__(self, run_dir: Path) -> None:
        super().__init__(run_dir)
        self.decoder = FrameDecoder()
        self.scene: Scene | None = None
        self.yaw = 0.0
        self.captures = 0
        self.requests = 0
        self.corrupted = 0

    def reset_line(self) -> None:
        self.decoder = FrameDecoder()

    def on_bytes(self, data: bytes) -> None:
        for item in self.decoder.feed(data):
            if isinstance(item, Frame):
                self.requests += 1
                self._reply(item.seq, item.cmd, self._answer(item))
            elif isinstance(item, Malformed) and item.reason.startswith("bad checksum"):
                seq = item.raw[6] if len(item.raw) > 7 else 0
                cmd = item.raw[7] if len(item.raw) > 7 else 0
                self._reply(seq, cmd, bytes([Result.BAD_CRC]))

    def _answer(self, request: Frame) -> bytes:
        ok = bytes([Result.OK])
        sensor_dead = "sensor_fault" in self.faults_active
        ir_dead = "ir_fault" in self.faults_active
        if request.cmd == Command.STATUS:
            return ok + encode_status(ModuleStatus(sensor_dead, ir_dead, self.captures))
        if request.cmd == Command.GET_INFO:
            return ok + encode_texts(*INFO)
        if request.cmd == Command.SELF_TEST:
            if sensor_dead:
                return bytes([Result.SENSOR_FAULT])
            if ir_dead:
                return bytes([Result.IR_FAULT])
            return ok + encode_texts("visible 1280x720 ok; infrared 640x360 ok; illuminator ok")
        if request.cmd == Command.CAPTURE:
            if isinstance(decode_capture_request(request.payload), Malformed):
                return bytes([Result.BAD_PARAMS])
            if sensor_dead:
                return bytes([Result.SENSOR_FAULT])
            if self.scene is None:
                return bytes([Result.CAPTURE_TIMEOUT])
            self.captures += 1
            return ok + encode_capture(self._capture(self.scene, ir_dead))
        return bytes([Result.BAD_COMMAND])

    def _capture(self, scene: Scene, ir_dead: bool) -> Capture:
        if ir_dead:
            liveness, score = Liveness.UNAVAILABLE, None
        elif scene.live and scene.face_count:
            liveness, score = Liveness.LIVE, LIVE_SCORE
        else:
            liveness, score = Liveness.NOT_LIVE, PAPER_SCORE if scene.face_count else 0.0
        return Capture(
            jpeg=scene.jpeg,
            width=scene.width,
            height=scene.height,
            liveness=liveness,
            liveness_score=score,
            quality=Quality(scene.face_count, scene.sharpness, self.yaw, 0.0, 0.0),
        )

    def _reply(self, seq: int, cmd: int, payload: bytes) -> None:
        frame = encode_frame(seq, cmd | 0x80, payload)
        if "bad_crc" in self.faults_active:
            frame = frame[:-1] + bytes([frame[-1] ^ 0xFF])
            self.faults_active.discard("bad_crc")  # once
            self.corrupted += 1
        self.send(frame)

    # -- control ----------------------------------------------------------------------------

    def act(self, action: str, params: dict[str, str]) -> dict[str, str]:
        if action == "present":
            return self._present(params)
        if action == "clear":
            self.scene = None
            return {"scene": "none"}
        if action == "list_people":
            return {person: str(len(photos)) for person, photos in PEOPLE.items()}
        raise SimError(
            f"action: {self.name} has no action {action!r}; available: present, clear, list_people"
        )

    def _present(self, params: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(params) - {"scene", "person", "index", "other", "yaw"})
        if unknown:
            raise SimError(f"present: {unknown[0]}: unknown parameter")
        kind = _choice(params, "scene", SCENES, "present")
        person = other = ""
        index = 0
        if kind != "no_face":
            person = _choice(params, "person", tuple(PEOPLE), "present")
            raw_index = params.get("index", "0")
            if not raw_index.isdigit() or int(raw_index) >= len(PEOPLE[person]):
                raise SimError(
                    f"present: index: {person} has photos 0 to {len(PEOPLE[person]) - 1}, "
                    f"got {raw_index!r}"
                )
            index = int(raw_index)
        if kind == "two_faces":
            others = tuple(p for p in PEOPLE if p != person)
            other = _choice({"other": params.get("other", others[0])}, "other", others, "present")
        try:
            self.yaw = float(params.get("yaw", "0"))
        except ValueError:
            raise SimError(f"present: yaw: not a number: {params['yaw'][:20]!r}") from None
        if not -90 <= self.yaw <= 90:
            raise SimError(f"present: yaw: -90 to 90 degrees, got {self.yaw:g}")
        self.scene = make_scene(kind, person, index, other)
        log_event(log, "sim_face_presented", scene=kind, person=person, index=index)
        return {
            "scene": kind,
            "person": person,
            "faces": str(self.scene.face_count),
            "image_bytes": str(len(self.scene.jpeg)),
        }

    def facts(self) -> dict[str, str]:
        return {
            "scene": self.scene.kind if self.scene else "none",
            "sensor": "fault" if "sensor_fault" in self.faults_active else "ok",
            "infrared": "fault" if "ir_fault" in self.faults_active else "ok",
            "captures": str(self.captures),
            "requests": str(self.requests),
            "corrupted_replies": str(self.corrupted),
        }
