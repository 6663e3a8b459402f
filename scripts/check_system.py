"""Does every program the tests run start on this machine? `make test` runs this after installing the
system packages, so a missing shared library is one line naming it and its Debian package, not a
test whose driver dies without a word (#21: Playwright's node without libatomic.so.1).

Each program is run with its cheapest no-op (``--version``) under a timeout. Standard library only:
it runs before anything else is known to work.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

TIMEOUT_S = 30.0

# Libraries the checked programs load, and the Debian 12 package each comes from (dpkg -S); any
# other is looked up with apt-file.
LIBRARY_PACKAGES = {
    "libatomic.so.1": "libatomic1",
    "libstdc++.so.6": "libstdc++6",
    "libgcc_s.so.1": "libgcc-s1",
    "libz.so.1": "zlib1g",
    "libnss3.so": "libnss3",
    "libnssutil3.so": "libnss3",
    "libsmime3.so": "libnss3",
    "libnspr4.so": "libnspr4",
    "libasound.so.2": "libasound2",
    "libpulse.so.0": "libpulse0",
    "libgbm.so.1": "libgbm1",
    "libdrm.so.2": "libdrm2",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libatk-1.0.so.0": "libatk1.0-0",
    "libatk-bridge-2.0.so.0": "libatk-bridge2.0-0",
    "libcups.so.2": "libcups2",
    "libdbus-1.so.3": "libdbus-1-3",
    "libexpat.so.1": "libexpat1",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgio-2.0.so.0": "libglib2.0-0",
    "libpango-1.0.so.0": "libpango-1.0-0",
    "libcairo.so.2": "libcairo2",
    "libX11.so.6": "libx11-6",
    "libXext.so.6": "libxext6",
    "libXfixes.so.3": "libxfixes3",
    "libXcomposite.so.1": "libxcomposite1",
    "libXdamage.so.1": "libxdamage1",
    "libXrandr.so.2": "libxrandr2",
    "libxcb.so.1": "libxcb1",
    "libXfont2.so.2": "libxfont2",
    "libpixman-1.so.0": "libpixman-1-0",
    "libunwind.so.8": "libunwind8",
    "libGL.so.1": "libgl1",
    "libfreetype.so.6": "libfreetype6",
    "libfontconfig.so.1": "libfontconfig1",
    "libsndfile.so.1": "libsndfile1",
    "libavcodec.so.59": "libavcodec59",
    "libavformat.so.59": "libavformat59",
    "libavutil.so.57": "libavutil57",
    "libflite.so.1": "libflite1",
    "libespeak-ng.so.1": "libespeak-ng1",
}

# glibc's loader: "PROG: error while loading shared libraries: LIB: cannot open shared object file: ...", or
# "...: /lib/x86_64-linux-gnu/LIB: file too short" for a library there but broken
_UNLOADABLE = re.compile(r"error while loading shared libraries: ([^:\s]+): ?([^\n]*)")
_NOT_THERE = "cannot open shared object file"
# and for a library too old: "PROG: /lib/.../LIB: version `GLIBCXX_3.4.32' not found (required by PROG)"
_TOO_OLD = re.compile(r"([^\s:]+): version [`']([^']+)' not found")


@dataclass(frozen=True)
class Program:
    """A program the tests run: its name, how to run it, and how to install it."""

    name: str
    argv: tuple[str, ...]
    install: str


@dataclass(frozen=True)
class LoaderError:
    library: str  # a file name, e.g. libatomic.so.1
    problem: str  # "is missing", "is too old (needs GLIBCXX_3.4.32)", "cannot be loaded (file too short)"


def parse_loader_error(output: str) -> LoaderError | None:
    """The library the dynamic loader could not provide, from a program's output; None if it did not say."""
    if m := _UNLOADABLE.search(output):
        reason = m.group(2).strip()
        problem = "is missing" if reason.startswith(_NOT_THERE) or not reason else f"cannot be loaded ({reason})"
        return LoaderError(os.path.basename(m.group(1)), problem)
    if m := _TOO_OLD.search(output):
        return LoaderError(os.path.basename(m.group(1)), f"is too old (needs {m.group(2)})")
    return None


def _apt(packages: str) -> str:
    sudo = "" if os.geteuid() == 0 else "sudo "
    return f"{sudo}apt-get install {packages}"


def advice(error: LoaderError) -> str:
    """What is wrong with the library and how to get it, in a few words."""
    package = LIBRARY_PACKAGES.get(error.library)
    what = f"{error.library} {error.problem}"
    if package is None:
        return f"{what} — find its package with: apt-file search {error.library}"
    if error.problem == "is missing":
        return f"{what} — install it with: {_apt(package)}"
    return f"{what} — reinstall or upgrade it with: {_apt('--reinstall ' + package)}"


def _playwright_node() -> str | None:
    """Playwright's bundled node (playwright/driver/node), in the Python running this."""
    spec = importlib.util.find_spec("playwright")
    if spec is None or spec.origin is None:
        return None
    return str(Path(spec.origin).parent / "driver" / "node")


def programs() -> list[Program]:
    """Every program the tests start, each with its cheapest no-op."""
    return [
        Program("playwright's node", (_playwright_node() or "playwright/driver/node", "--version"), "make install"),
        Program("chromium", (os.environ.get("KP_CHROMIUM", "chromium"), "--version"), _apt("chromium")),
        Program("ffmpeg", ("ffmpeg", "-version"), _apt("ffmpeg")),
        Program("ffprobe", ("ffprobe", "-version"), _apt("ffmpeg")),
        Program("Xvfb", ("Xvfb", "-help"), _apt("xvfb")),  # this Xvfb has no -version; -help exits 0
        Program("pulseaudio", ("pulseaudio", "--version"), _apt("pulseaudio")),
        Program("espeak-ng", ("espeak-ng", "--version"), _apt("espeak-ng")),
        Program("flite", ("flite", "-lv"), _apt("flite")),  # its --version exits 1; -lv lists voices
    ]


def check(program: Program, timeout_s: float = TIMEOUT_S) -> str | None:
    """None if the program starts; otherwise one line saying why not and what to install."""
    executable = shutil.which(program.argv[0])
    if executable is None:
        return f"{program.name} ({program.argv[0]}) is not installed — install it with: {program.install}"
    label = f"{program.name} ({executable})"
    try:
        done = subprocess.run(
            [executable, *program.argv[1:]],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return f"{label} did not answer {' '.join(program.argv[1:])} within {timeout_s:g} s"
    except OSError as e:
        return f"{label} cannot be run: {e.strerror or e}"
    if done.returncode == 0:
        return None
    output = done.stderr + done.stdout
    if error := parse_loader_error(output):
        return f"{label} cannot start: {advice(error)}"
    last = next((line.strip() for line in reversed(output.splitlines()) if line.strip()), "no output")
    return f"{label} {' '.join(program.argv[1:])} exited {done.returncode}: {last}"


def main(checked: Sequence[Program] | None = None) -> int:
    checked = programs() if checked is None else checked
    failures = [line for line in (check(p) for p in checked) if line is not None]
    for line in failures:
        print(f"check-system: {line}", file=sys.stderr)
    if failures:
        return 1
    print(f"check-system: {len(checked)} programs the tests run start: {', '.join(p.name for p in checked)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
