"""Hostile or malformed input from the user or the remote: every case is one line, never a traceback."""

from __future__ import annotations

import pytest

from casreg.errors import InvalidInput
from casreg.remotes import open_backend
from casreg.remotes.config import parse_url
from tests.helpers import one_line_error, run_cli

BAD_URLS = [
    ("redis://127.0.0.1:abc/0", "port"),
    ("redis://127.0.0.1:99999/0", "port"),
    ("mysql://root@127.0.0.1:-1/test", "port"),
    ("gopher://example.com/", "use file://"),
    ("redis://[::1", "ipv6"),
    ("redis://[::1]:x/0", "port"),
    ("redis://", "needs a host"),
    ("redis:///0", "needs a host"),
    ("redis://127.0.0.1:6379/zero", "db number"),
    ("redis://127.0.0.1/0?prefx=a", "prefix, timeout"),
    ("redis://127.0.0.1/0?timeout=soon", "timeout"),
    ("redis://127.0.0.1/0?timeout=0", "timeout"),
    ("mysql://root@127.0.0.1:3306/", "needs a database"),
    ("mysql://root@127.0.0.1/test?prefix=x;drop", "prefix"),
    ("cos://bucket?region=ap-guangzhou", "bucket"),
    ("cos://b-1250000000", "region"),
    ("cos://b-1250000000?region=ap-guangzhou&port=http", "port"),
    ("cos://b-1250000000?region=ap guangzhou", "region"),
    ("file://somehost/x", "file:///"),
    ("redis://u:hunter2@127.0.0.1:abc/0", "port"),
]


@pytest.mark.parametrize("url, problem", BAD_URLS)
def test_malformed_url_is_invalid_input(url, problem):
    for call in (parse_url, open_backend):
        with pytest.raises(InvalidInput) as info:
            call(url)
        message = str(info.value)
        assert problem.lower() in message.lower() and "\n" not in message
        assert "hunter2" not in message


def test_malformed_url_is_one_line_in_the_cli(tmp_path):
    run_cli("init", cwd=tmp_path, check=0)
    for i, (url, problem) in enumerate(BAD_URLS):
        line = one_line_error(run_cli("remote", "add", f"r{i}", url, cwd=tmp_path))
        assert problem.lower() in line.lower() and "hunter2" not in line, line
        line = one_line_error(run_cli("clone", url, tmp_path / f"c{i}", cwd=tmp_path))
        assert problem.lower() in line.lower() and "hunter2" not in line, line
        assert not (tmp_path / f"c{i}").exists()
    assert run_cli("remote", "list", cwd=tmp_path, check=0).stdout == b""


def test_unknown_query_key_lists_the_known_ones():
    with pytest.raises(InvalidInput, match="known for cos://: region, prefix, endpoint, ip, port, scheme, timeout"):
        parse_url("cos://b-1250000000?region=ap-guangzhou&bucket=x")
    with pytest.raises(InvalidInput, match="given twice"):
        parse_url("redis://127.0.0.1/0?prefix=a&prefix=b")
