"""User mistakes exit with status 2 and a message that names the problem and the fix."""

from __future__ import annotations

import sys

import click


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)
