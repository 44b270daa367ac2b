"""Install a pinned Home Assistant into its own venv under build/, for `make test-ha`.

    python -m tools.ha_install [--dir build/ha]     # install LOCK (a second run returns at once)
    python -m tools.ha_install --relock             # work LOCK out again, from the HA wheel

Home Assistant's wheel ships `package_constraints.txt`, the versions it is released with: pip
resolves against it in seconds instead of backtracking through hundreds of packages. HA is run
with `--skip-pip`, so what the integrations it always loads need (their manifests'
`requirements`) is installed here too. LOCK pins every package of the venv: HA's constraints
leave some open (josepy 2 broke hass-nabucasa's acme), and a fresh clone must get what was tested.
Prints the wall time it took.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import zipfile
from pathlib import Path

HA_VERSION = "2024.3.3"
DEFAULT_DIR = Path("build/ha")
LOCK = Path(__file__).resolve().parent.parent / "host_tests" / "ha" / "requirements-ha.txt"
# Pins HA's constraints leave open, or needs its manifests do not name.
FIXES = (
    "josepy<2",  # acme, under hass-nabucasa, uses josepy.ComparableX509, gone in josepy 2
    "numpy",  # camera (loaded with the frontend) imports stream, which imports numpy
)
# Integrations the test loads besides the ones HA always loads (bootstrap's own lists).
EXTRA_DOMAINS = ("mqtt", "recorder", "sensor", "binary_sensor", "trusted_networks")

# Run with the venv's Python: the manifests' requirements of every integration HA will load.
_REQUIREMENTS = """
import json, sys
from pathlib import Path
import homeassistant.bootstrap as b
import homeassistant.components as c
root = Path(c.__path__[0])
todo = set(b.CORE_INTEGRATIONS) | set(b.DEFAULT_INTEGRATIONS) | set(b.LOGGING_INTEGRATIONS)
todo |= set(sys.argv[1:])
seen, reqs = set(), set()
while todo:
    domain = todo.pop()
    path = root / domain / "manifest.json"
    if domain in seen or not path.exists():
        continue
    seen.add(domain)
    manifest = json.loads(path.read_text())
    reqs.update(manifest.get("requirements", []))
    todo.update(manifest.get("dependencies", []))
print("\\n".join(sorted(reqs)))
"""


def _pip(venv: Path, *args: str) -> None:
    cmd = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *args]
    subprocess.run(["nice", "-n", "10", *cmd], check=True)


def constraints(wheel_dir: Path, out: Path) -> Path:
    """The package_constraints.txt from inside the HA wheel, written to `out`."""
    wheel = next(wheel_dir.glob(f"homeassistant-{HA_VERSION}-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        out.write_bytes(zf.read("homeassistant/package_constraints.txt"))
    return out


def _venv(base: Path) -> tuple[Path, Path]:
    """The venv (made if missing) and HA's constraints file, taken from its wheel."""
    venv = base / "venv"
    base.mkdir(parents=True, exist_ok=True)
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    wheels = base / "wheel"
    if not any(wheels.glob(f"homeassistant-{HA_VERSION}-*.whl")):
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "download", "--quiet", "--no-deps",
             "-d", str(wheels), f"homeassistant=={HA_VERSION}"],
            check=True,
        )  # fmt: skip
    return venv, constraints(wheels, base / "package_constraints.txt")


def install(base: Path, lock: Path = LOCK) -> Path:
    """Make `base`/venv hold exactly what `lock` pins; returns the hass path."""
    venv = base / "venv"
    stamp = venv / ".installed"
    hass = venv / "bin" / "hass"
    if stamp.exists() and stamp.read_bytes() == lock.read_bytes():
        return hass
    venv, cons = _venv(base)
    _pip(venv, "-c", str(cons), "-r", str(lock))
    stamp.write_bytes(lock.read_bytes())
    return hass


def relock(base: Path, lock: Path = LOCK) -> None:
    """HA, its always-loaded integrations' requirements and FIXES, frozen into `lock`."""
    venv, cons = _venv(base)
    _pip(venv, "-c", str(cons), f"homeassistant=={HA_VERSION}")
    reqs = subprocess.run(
        [str(venv / "bin" / "python"), "-c", _REQUIREMENTS, *EXTRA_DOMAINS],
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    _pip(venv, "-c", str(cons), *reqs, *FIXES)
    frozen = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "freeze", "--all", "--exclude", "pip"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    head = f"# Home Assistant {HA_VERSION} for make test-ha: python -m tools.ha_install --relock\n"
    lock.write_text(head + frozen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--relock", action="store_true", help="write the lock file again")
    args = parser.parse_args(argv)
    start = time.monotonic()
    if args.relock:
        relock(args.dir)
    hass = install(args.dir)
    print(f"home assistant {HA_VERSION}: {hass} ready in {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
