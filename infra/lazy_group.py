"""A command group of ``eco2`` whose commands are imported only when the group itself is used.

``eco2 --help`` and every other command then never import what the group needs (the
benchmarks pull in their whole stack: load generators, FastStream, the eventsourcing library).
The group's commands come from a ``typer.Typer`` named by ``"module:attribute"``; a callback on
that Typer is not carried over, so only groups without one can be lazy.
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:  # typer vendors click; its classes are only reachable here
    from typer._click.core import Command, Context


@functools.cache
def _load(target: str) -> TyperGroup:
    module_name, _, attribute = target.partition(":")
    source = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(source, typer.Typer):
        raise TypeError(f"{target} is not a typer.Typer")
    group = typer.main.get_command(source)
    if not isinstance(group, TyperGroup):
        raise TypeError(f"{target} has a single command, not a group")
    return group


def lazy_typer(target: str, *, help: str) -> typer.Typer:
    """A Typer to ``add_typer`` whose commands are those of ``target``, imported on first use."""

    class LazyGroup(TyperGroup):
        def list_commands(self, ctx: Context) -> list[str]:
            return _load(target).list_commands(ctx)

        def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
            return _load(target).get_command(ctx, cmd_name)

    return typer.Typer(cls=LazyGroup, help=help, no_args_is_help=True)
