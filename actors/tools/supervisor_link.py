"""supervisord's XML-RPC interface, reached as supervisorctl reaches it from a host's rendered configuration.

The host commands that act on a running supervisord (``fixmesh deploy
reload``, ``fixmesh deploy stop``) go through this one door: the socket and
the password come from the configuration's ``[supervisorctl]`` section
(``FIXMESH_SUPERVISOR_PASSWORD`` and, with the default root,
``FIXMESH_ROOT`` from the environment), as for ``supervisorctl -c``.
"""

from __future__ import annotations

import io
import xmlrpc.client
from pathlib import Path
from typing import Any

from supervisor.options import ClientOptions  # type: ignore[import-untyped]


class SupervisorError(Exception):
    """supervisord cannot be reached or is not running; the message says why and what to do."""


class Supervisor:
    """One host's supervisord."""

    def __init__(self, conf: Path) -> None:
        options = ClientOptions()  # supervisorctl's own reading of its section
        said = io.StringIO()
        options.stderr = options.stdout = said
        try:
            options.realize(args=["-c", str(conf)], doc="")
        except SystemExit:
            # supervisor's own words, without the list of every variable it could have used
            why = said.getvalue().strip().split("\n")[0].removeprefix("Error: ").split(". Available names")[0]
            raise SupervisorError(f"cannot use its [supervisorctl] section ({why}); is FIXMESH_SUPERVISOR_PASSWORD "
                                  "set (and FIXMESH_ROOT, with the default root) as for supervisorctl?") from None
        self.rpc: Any = options.getServerProxy().supervisor

    def check(self) -> None:
        """Fail with what to do unless supervisord answers and runs."""
        try:
            state = self.rpc.getState()
        except (OSError, xmlrpc.client.Error) as exc:
            raise SupervisorError(f"supervisord does not answer ({exc}); is it running with this configuration, and "
                                  "is FIXMESH_SUPERVISOR_PASSWORD its password?") from None
        if state.get("statename") != "RUNNING":
            raise SupervisorError(f"supervisord is {state.get('statename')}, not RUNNING")

    def states(self) -> dict[str, str]:
        """Each program's state (RUNNING, STOPPED, ...)."""
        return {info["name"]: info["statename"] for info in self.rpc.getAllProcessInfo()}
