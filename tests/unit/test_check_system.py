"""scripts/check_system.py, which `make test` runs: a program the tests need that cannot start is one
line naming the missing library and its Debian package (#21)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_system.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_system", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


cs = _load()
NODE = "/work/.venv/lib/python3.11/site-packages/playwright/driver/node"


@pytest.mark.parametrize(
    ("output", "library", "problem"),
    [
        (  # #21, verbatim
            f"{NODE}: error while loading shared libraries: libatomic.so.1: cannot open shared object file: "
            "No such file or directory\n",
            "libatomic.so.1",
            "is missing",
        ),
        (  # Debian's chromium wrapper says things of its own before the binary's loader speaks
            "/usr/bin/chromium: 9: [: 25274888192: unexpected operator\n/usr/lib/chromium/chromium: error while "
            "loading shared libraries: libnss3.so: cannot open shared object file: No such file or directory\n",
            "libnss3.so",
            "is missing",
        ),
        (  # there, but not a library
            f"{NODE}: error while loading shared libraries: /lib/x86_64-linux-gnu/libatomic.so.1: file too short\n",
            "libatomic.so.1",
            "cannot be loaded (file too short)",
        ),
        (  # there, but older than the binary was built against
            f"{NODE}: /lib/x86_64-linux-gnu/libstdc++.so.6: version `GLIBCXX_3.4.32' not found (required by {NODE})\n",
            "libstdc++.so.6",
            "is too old (needs GLIBCXX_3.4.32)",
        ),
    ],
)
def test_the_loaders_complaint_names_the_library(output: str, library: str, problem: str) -> None:
    assert cs.parse_loader_error(output) == cs.LoaderError(library, problem)


def test_other_failures_are_not_taken_for_a_missing_library() -> None:
    assert cs.parse_loader_error("Unrecognized option: -version\nuse: X [:<display>] [option]\n") is None
    assert cs.parse_loader_error("") is None


def test_the_advice_names_the_package_with_sudo_when_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = cs.LoaderError("libatomic.so.1", "is missing")
    monkeypatch.setattr(cs.os, "geteuid", lambda: 0)
    assert cs.advice(missing) == "libatomic.so.1 is missing — install it with: apt-get install libatomic1"
    monkeypatch.setattr(cs.os, "geteuid", lambda: 1000)
    assert cs.advice(missing) == "libatomic.so.1 is missing — install it with: sudo apt-get install libatomic1"
    unknown = cs.LoaderError("libfoo.so.3", "is missing")
    assert cs.advice(unknown) == "libfoo.so.3 is missing — find its package with: apt-file search libfoo.so.3"


def _fake(folder: Path, name: str, script: str) -> str:
    """A stand-in program: a shell script."""
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return str(path)


def test_a_program_that_cannot_load_a_library_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    node = _fake(
        tmp_path,
        "node",
        'echo "$0: error while loading shared libraries: libatomic.so.1: cannot open shared object file: '
        'No such file or directory" >&2; exit 127',
    )
    fine = _fake(tmp_path, "fine", "echo v1")
    checked = [
        cs.Program("playwright's node", (node, "--version"), "make install"),
        cs.Program("fine", (fine, "--version"), "-"),
    ]
    assert cs.main(checked) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"check-system: playwright's node ({node}) cannot start: libatomic.so.1 is missing — ")
    assert err[0].endswith("apt-get install libatomic1")


def test_a_program_not_installed_or_failing_otherwise_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = _fake(tmp_path, "broken", 'echo "something else went wrong" >&2; exit 3')
    checked = [
        cs.Program("Xvfb", ("/nonexistent/Xvfb", "-help"), "apt-get install xvfb"),
        cs.Program("broken", (broken, "--version"), "-"),
    ]
    assert cs.main(checked) == 1
    assert capsys.readouterr().err.splitlines() == [
        "check-system: Xvfb (/nonexistent/Xvfb) is not installed — install it with: apt-get install xvfb",
        f"check-system: broken ({broken}) --version exited 3: something else went wrong",
    ]


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler to build a program whose library is gone")
def test_a_real_program_whose_library_is_gone(tmp_path: Path) -> None:
    (tmp_path / "lib.c").write_text("int cp_answer(void) { return 42; }\n")
    (tmp_path / "main.c").write_text("int cp_answer(void);\nint main(void) { return cp_answer() != 42; }\n")
    lib = tmp_path / "libcpgone.so.1"
    prog = tmp_path / "prog"
    subprocess.run(["cc", "-shared", "-fPIC", "-Wl,-soname,libcpgone.so.1", "-o", lib, tmp_path / "lib.c"], check=True)
    subprocess.run(["cc", "-o", prog, tmp_path / "main.c", lib, f"-Wl,-rpath,{tmp_path}"], check=True)
    program = cs.Program("prog", (str(prog),), "-")
    assert cs.check(program) is None
    lib.unlink()
    assert cs.check(program) == (
        f"prog ({prog}) cannot start: libcpgone.so.1 is missing — find its package with: apt-file search libcpgone.so.1"
    )


def test_every_program_the_tests_run_starts_here() -> None:
    """`make test` runs the tests after this check passed; run it as `make test` does."""
    missing = [p.argv[0] for p in cs.programs() if shutil.which(p.argv[0]) is None]
    if missing:
        pytest.skip(f"not installed here: {', '.join(missing)} (make install)")
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
