"""A failed connection reads as one clear sentence from libpq's message, with libpq's question in the fix
(finding 7: it was doubled and run on: "…failed: connection failed: …Connection refused Is the server running…")."""

from __future__ import annotations

import psycopg
import pytest

from migration.errors import CONNECTION_HINT, connection_failure, explain
from migration.pgserver import free_port


def test_a_refused_connection_is_one_sentence_and_the_question_goes_to_the_fix():
    port = free_port()
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(f"postgresql://u:pw@127.0.0.1:{port}/db", connect_timeout=5)
    error = explain(caught.value)
    assert error.message == f"Connection to server failed at 127.0.0.1, port {port}: connection refused."
    assert error.message.count("failed") == 1 and "Is the server running" not in error.message
    assert error.hint.startswith("Is the server running on that host and accepting TCP/IP connections?")
    assert error.hint.endswith(CONNECTION_HINT)


def test_a_missing_socket_names_the_socket(tmp_path):
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(f"postgresql://u:pw@/db?host={tmp_path}&port=5")
    error = explain(caught.value)
    assert error.message == f"Connection to server failed on socket {tmp_path}/.s.PGSQL.5: no such file or directory."
    assert "accepting connections on that socket?" in error.hint


@pytest.mark.parametrize("text,message", [
    ('connection failed: connection to server at "localhost" (::1), port 1 failed: Connection refused\n'
     '\tIs the server running on that host and accepting TCP/IP connections?\n'
     'connection to server at "localhost" (127.0.0.1), port 1 failed: Connection refused\n'
     '\tIs the server running on that host and accepting TCP/IP connections?',
     "Connection to server failed at localhost (::1, 127.0.0.1), port 1: connection refused."),
    ("failed to resolve host 'db.invalid': [Errno -2] Name or service not known",
     "Connection to server failed: the host name db.invalid could not be resolved (name or service not known)."),
    ('connection failed: connection to server at "h" (10.0.0.5), port 5432 failed: FATAL:  no pg_hba.conf entry '
     'for host "10.0.0.9", user "app", database "shop", no encryption',
     'Connection to server failed at h (10.0.0.5), port 5432: no pg_hba.conf entry for host "10.0.0.9", user '
     '"app", database "shop", no encryption.'),
])
def test_libpq_messages_become_one_sentence(text, message):
    assert connection_failure(text)[0] == message
