"""The committed protobuf/gRPC code is what protos/ generates today."""

from __future__ import annotations

from pathlib import Path

from paykit.contracts.codegen import generate, stale_files


def test_generated_protobuf_code_matches_the_protos() -> None:
    stale = stale_files()
    assert stale == [], (
        "generated protobuf code is stale (a .proto changed without regenerating); "
        "run `make proto` and commit the result. Stale files: " + ", ".join(stale)
    )


def test_generation_covers_every_proto_so_the_staleness_check_is_not_vacuous(
    tmp_path: Path,
) -> None:
    generated = {p.relative_to(tmp_path).as_posix() for p in generate(tmp_path)}
    assert "paykit/events/v1/envelope_pb2.py" in generated
    assert "paykit/events/v1/envelope_pb2.pyi" in generated
    assert any(name.endswith("_pb2_grpc.py") for name in generated)
