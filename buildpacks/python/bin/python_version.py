"""The Python version an app asks for, read as Heroku's Python buildpack
reads it: runtime.txt, then .python-version, then Pipfile.lock, then uv's
requires-python. Prints "VERSION FILE", nothing when no file asks, or an
error naming the file and the line (exit 1).

Usage: python_version.py BUILD_DIR
"""

import json
import os
import re
import sys

# The newest patch release considered to exist, per supported 3.x minor: a
# version past it is refused as never released. Generous on purpose, so a
# release newer than this file is not refused; 3.9 and older are past end
# of life.
SUPPORTED = {10: 25, 11: 25, 12: 20, 13: 20, 14: 12, 15: 5}
OLDEST, NEWEST = min(SUPPORTED), max(SUPPORTED)
SHAPE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?$")


def fail(message):
    print(message)
    sys.exit(1)


def check(version, where):
    m = SHAPE.match(version)
    if not m:
        fail(f"{where}: {version!r} is not a Python version: write it like 3.13 or 3.13.2")
    major, minor, patch = int(m[1]), int(m[2]), m[3]
    if major == 2 or (major == 3 and minor < OLDEST):
        fail(f"{where}: Python {version} has reached its end of life and is not supported: use 3.{OLDEST} or newer")
    if major != 3 or minor > NEWEST:
        fail(f"{where}: Python {version} is not a released Python version: use one of 3.{OLDEST} to 3.{NEWEST}")
    if patch is not None and int(patch) > SUPPORTED[minor]:
        fail(f"{where}: Python {version} is not a released Python version: use 3.{minor} to get its newest release")
    return version


def read_text(path, name):
    raw = open(path, "rb").read()
    if raw.startswith(b"\xef\xbb\xbf"):
        fail(f"{name}: the file starts with a byte order mark: save it as UTF-8 without one")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        fail(f"{name}: the file is not UTF-8 text")


def from_runtime_txt(build):
    path = os.path.join(build, "runtime.txt")
    if not os.path.isfile(path):
        return None
    text = read_text(path, "runtime.txt").strip()
    m = re.match(r"^python-(\S+)$", text)
    if not m:
        fail(f"runtime.txt line 1: {text!r} is not a Python version: write it like python-3.13.2 (or use .python-version)")
    return check(m[1], "runtime.txt line 1"), "runtime.txt"


def from_python_version(build):
    path = os.path.join(build, ".python-version")
    if not os.path.isfile(path):
        return None
    text = read_text(path, ".python-version")
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line and not line.startswith("#"):
            found.append((number, line))
    if not found:
        fail(".python-version: the file has no version in it (only blank lines or comments): write one like 3.13")
    if len(found) > 1:
        lines = ", ".join(str(n) for n, _ in found)
        fail(f".python-version: the file names several versions (lines {lines}): keep one")
    number, version = found[0]
    return check(version, f".python-version line {number}"), ".python-version"


def from_pipfile_lock(build):
    path = os.path.join(build, "Pipfile.lock")
    if not os.path.isfile(path):
        return None
    try:
        requires = json.loads(read_text(path, "Pipfile.lock")).get("_meta", {}).get("requires", {})
    except (ValueError, AttributeError):
        fail("Pipfile.lock: the file is not valid JSON: run `pipenv lock` and commit it")
    version = requires.get("python_full_version") or requires.get("python_version")
    if not version:
        return None
    return check(str(version), "Pipfile.lock python_version"), "Pipfile.lock"


def from_uv(build):
    if not os.path.isfile(os.path.join(build, "uv.lock")):
        return None
    path = os.path.join(build, "pyproject.toml")
    if not os.path.isfile(path):
        return None
    m = re.search(r'^\s*requires-python\s*=\s*"([^"]*)"', read_text(path, "pyproject.toml"), re.M)
    if not m:
        return None
    # Only a pin asks for a version; a range (>=3.11) is a floor the
    # stack's version meets or not at install time.
    pinned = re.fullmatch(r"\s*==\s*(\d+\.\d+(?:\.\d+)?)(?:\.\*)?\s*", m[1])
    if not pinned:
        return None
    return check(pinned[1], "pyproject.toml requires-python"), "pyproject.toml"


def main():
    build = sys.argv[1]
    for source in (from_runtime_txt, from_python_version, from_pipfile_lock, from_uv):
        found = source(build)
        if found:
            print(f"{found[0]} {found[1]}")
            return


main()
