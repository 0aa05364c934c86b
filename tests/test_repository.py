"""The repository stands alone: no tracked file points outside it (the design is
docs/DESIGN.md, not a file next to the checkout), the paths the design and the README
name exist, and the architecture picture has one source (docs/architecture.mmd)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SELF = Path(__file__).resolve().relative_to(ROOT).as_posix()
# A relative path climbing out of its folder: `../x`, "../x", (../x), or at a line start.
_CLIMB = re.compile(r"(?:^|[\s`'\"(\[=:])((?:\.\./)+[\w.\-/]*)")
_OUTSIDE = re.compile(r"\.\./shared|/work/|shared/(?:DESIGN|STYLE|TESTING)\.md")
_NAMED_PATH = re.compile(r"`((?:docs|awasi|services|deploy|tests|bench)/[\w.*/-]+)`")


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    files = []
    for name in filter(None, names):
        path = ROOT / name
        if name == SELF or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:4096]:
            continue  # binary
        files.append(path)
    return files


def test_the_file_walk_sees_the_repository() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in tracked_text_files()}
    assert {"README.md", "docs/DESIGN.md", "docs/ARCHITECTURE.md", "awasi/cli.py"} <= names


def test_no_tracked_file_refers_outside_the_repository() -> None:
    found = []
    for path in tracked_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for n, line in enumerate(text.splitlines(), 1):
            where = f"{path.relative_to(ROOT)}:{n}"
            if _OUTSIDE.search(line):
                found.append(f"{where}: {line.strip()[:120]}")
            for climb in _CLIMB.findall(line):
                target = (path.parent / climb).resolve()
                if not target.is_relative_to(ROOT):
                    found.append(f"{where}: {climb}")
    assert found == []


def test_the_patterns_catch_what_they_must() -> None:
    # Spelled in two pieces, so this file itself names no path outside the repository.
    sibling = "../" + "shared"
    assert _OUTSIDE.search(f"The contract is `{sibling}/DESIGN.md` (next to the repository)")
    assert _OUTSIDE.search("see /work/shared/DESIGN.md")
    assert _CLIMB.findall("the image: `../Dockerfile`") == ["../Dockerfile"]
    assert (ROOT / "docs" / "../../elsewhere").resolve().is_relative_to(ROOT) is False
    assert not _CLIMB.findall('"/%70anel/../evil"')  # a URL path, not a file reference


def test_paths_named_by_the_design_and_the_readme_exist() -> None:
    missing = []
    for doc in ("docs/DESIGN.md", "README.md", "docs/ARCHITECTURE.md"):
        for name in _NAMED_PATH.findall((ROOT / doc).read_text(encoding="utf-8")):
            if not list(ROOT.glob(name.rstrip("/"))):
                missing.append(f"{doc}: {name}")
    assert missing == []


def test_the_architecture_picture_has_one_source() -> None:
    source = (ROOT / "docs" / "architecture.mmd").read_text(encoding="utf-8")
    assert source.startswith("flowchart ")
    for doc in ("README.md", "docs/DESIGN.md"):
        blocks = re.findall(r"```mermaid\n(.*?)```", (ROOT / doc).read_text(encoding="utf-8"),
                            flags=re.S)
        assert blocks == [source], f"{doc}: copy docs/architecture.mmd into its mermaid block"


def test_the_readme_starts_with_the_two_commands() -> None:
    blocks = re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"),
                        flags=re.S)
    assert blocks[:2] == ["make dev\n", "make test\n"]
