"""Generate the Python code for protos/ and check that the committed copy is current.

`python -m paykit.contracts.codegen generate` rewrites the generated modules;
`python -m paykit.contracts.codegen check` regenerates into a temporary folder
and fails, naming the files, when the committed code differs (a proto edited
without `make proto`).
"""

from __future__ import annotations

import filecmp
import importlib.resources
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def repo_root() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / "protos").is_dir() and (parent / "libs").is_dir():
            return parent
    raise RuntimeError("cannot find the repository root (a folder holding protos/ and libs/)")


def proto_files(root: Path) -> list[Path]:
    return sorted((root / "protos").rglob("*.proto"))


def generate(out_dir: Path, root: Path | None = None) -> list[Path]:
    root = root or repo_root()
    protos_dir = root / "protos"
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    files = [str(p.relative_to(protos_dir)) for p in proto_files(root)]
    args = [
        "grpc_tools.protoc",
        f"-I{protos_dir}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *files,
    ]
    code = protoc.main(args)
    if code != 0:
        raise RuntimeError(f"protoc failed with exit code {code}")
    return sorted(p for p in out_dir.rglob("*") if p.name.endswith(GENERATED_SUFFIXES))


def generated_root() -> Path:
    return repo_root() / "libs" / "contracts" / "src"


def stale_files() -> list[str]:
    """Relative paths whose committed generated code differs from a fresh generation."""
    committed_root = generated_root()
    with tempfile.TemporaryDirectory() as tmp:
        fresh_root = Path(tmp)
        fresh = {p.relative_to(fresh_root) for p in generate(fresh_root)}
        committed = {
            p.relative_to(committed_root)
            for p in committed_root.rglob("*")
            if p.name.endswith(GENERATED_SUFFIXES)
        }
        stale = sorted(str(p) for p in fresh ^ committed)
        for rel in sorted(fresh & committed):
            if not filecmp.cmp(fresh_root / rel, committed_root / rel, shallow=False):
                stale.append(str(rel))
        return stale


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "generate"
    if command == "generate":
        written = generate(generated_root())
        print(f"generated {len(written)} files under {generated_root()}")
        return 0
    if command == "check":
        stale = stale_files()
        if stale:
            print("generated protobuf code is stale; run `make proto`:", file=sys.stderr)
            for name in stale:
                print(f"  {name}", file=sys.stderr)
            return 1
        print("generated protobuf code is current")
        return 0
    print(f"unknown command {command!r}; use generate or check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
