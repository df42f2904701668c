"""Metadata values: one typing rule everywhere, round-tripping as typed, strict JSON out."""

import json

import pytest

from casreg.errors import InvalidInput
from casreg.metadata import parse_pairs, parse_value
from tests.helpers import one_line_error, run_cli, write_file


@pytest.mark.parametrize("text,value", [
    ("0123456", "0123456"), ("007", "007"), ("1_000", "1_000"), ("fate", "fate"), ("", ""),
    ("0.1", 0.1), ("42", 42), ("-3", -3), ("true", True), ("null", None), ('"007"', "007"),
    ('["a", 1]', ["a", 1]), ('{"k": 2}', {"k": 2}), ("True", "True"), ("1e3", 1000.0),
])
def test_a_value_is_json_when_it_parses_else_text(text, value):
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-Infinity", "1e999", "[NaN]", '{"x": Infinity}'])
def test_non_finite_numbers_are_refused(text):
    with pytest.raises(InvalidInput):
        parse_value(text)


def test_pairs_need_a_key():
    assert parse_pairs(["a=b=c"]) == {"a": "b=c"}
    with pytest.raises(InvalidInput, match="key=value"):
        parse_pairs(["=x"])


def test_commit_meta_and_meta_set_type_alike_and_json_is_strict(tmp_path):
    run_cli("init", cwd=tmp_path, check=0)
    write_file(tmp_path / "m" / "w.bin", b"weights")
    run_cli("commit", "m", "--ref", "m/v", "--meta", "sha=0123456", "--meta", "lr=0.1", cwd=tmp_path, check=0)
    run_cli("meta", "set", "m/v", "zip=007", "run=1_000", "epochs=3", cwd=tmp_path, check=0)
    meta = json.loads(run_cli("meta", "get", "m/v", cwd=tmp_path, check=0).stdout)
    assert meta == {"sha": "0123456", "lr": 0.1, "zip": "007", "run": "1_000", "epochs": 3}
    assert "finite" in one_line_error(run_cli("meta", "set", "m/v", "loss=nan", cwd=tmp_path))
    assert "finite" in one_line_error(run_cli("commit", "m", "--ref", "m/w", "--meta", "loss=inf", cwd=tmp_path))


def test_the_python_api_refuses_what_json_cannot_carry(repo, tmp_path):
    src = write_file(tmp_path / "m" / "w.bin", b"weights")
    with pytest.raises(InvalidInput, match="finite"):
        repo.commit(src, "m/v", meta={"loss": float("nan")})
    with pytest.raises(InvalidInput, match="not a JSON value"):
        repo.commit(src, "m/v", meta={"when": object()})
    assert repo.list_refs() == []
