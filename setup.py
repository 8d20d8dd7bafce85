"""Map Branchline's top-level folders onto the one `branchline` import namespace."""

from pathlib import Path

from setuptools import setup

FOLDERS = {
    "branchline.agent": "agent",
    "branchline.server": "server",
    "branchline.drivers": "drivers",
    "branchline.sim": "hardware-sim",
    "branchline.common": "common",
    "branchline.v1": "protos/branchline/v1",
}


def _packages() -> tuple[list[str], dict[str, str]]:
    packages: list[str] = []
    package_dir: dict[str, str] = {}
    for name, folder in FOLDERS.items():
        for init in sorted(Path(folder).rglob("__init__.py")):
            rel = init.parent.relative_to(folder)
            dotted = ".".join((name, *rel.parts)) if rel.parts else name
            packages.append(dotted)
            package_dir[dotted] = str(init.parent)
    return packages, package_dir


PACKAGES, PACKAGE_DIR = _packages()
setup(
    packages=PACKAGES,
    package_dir=PACKAGE_DIR,
    package_data={
        "branchline.server": ["migrations/*.ini", "migrations/**/*.py", "migrations/*.mako"],
        "branchline.server.assistant": ["data/*.json"],
        # The phone gateway's static files (no build step).
        "branchline.server.mobile_gateway": ["static/*.js", "static/*.css", "static/*.svg"],
        # The kiosk page and its message catalogues ship with the agent (no build step).
        "branchline.agent.kiosk": [
            "static/*.html",
            "static/*.js",
            "static/screens/*.js",
            "static/*.css",
            "messages/*.json",
        ],
        # The page side of recordings, served by the kiosk and the console.
        "branchline.common.recordings": ["recorder.js"],
        "branchline.common.webrtc": ["peer.js"],
        "branchline.server.console": [
            "static/*.html",
            "static/*.js",
            "static/screens/*.js",
            "static/*.css",
            "messages/*.json",
        ],
    },
)
