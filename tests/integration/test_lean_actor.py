"""A session actor restarted on an unchanged topology maps neither the XML parser nor PyYAML.

The first start derives its data dictionary's tables and its topology's
document and keeps them in the cache folder; every later start reads them
from there (``actors.shell.plain_cache``). What a process imported shows in
its memory map: ``pyexpat`` and PyYAML's ``_yaml`` are extension modules, so
each is a mapped file while imported. A real actor process, a real cache.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from actors.shell.plain_cache import CACHE_DIR_ENV
from tests.acceptance import conformance_dir
from tests.interop import Children, free_ports, wait_listening

EXTENSIONS = ("pyexpat", "_yaml", "_elementtree")


def mapped_extensions(pid: int) -> set[str]:
    """Which of ``EXTENSIONS`` the process has mapped."""
    with open(f"/proc/{pid}/maps", encoding="utf-8") as maps:
        files = {line.split()[-1].rsplit("/", 1)[-1] for line in maps if ".so" in line}
    return {name for name in EXTENSIONS if any(f.startswith(name + ".") for f in files)}


def test_a_warm_start_maps_neither_the_xml_parser_nor_pyyaml(tmp_path: Path, children: Children) -> None:
    router, xsub, xpub, port = free_ports(4)
    topology = tmp_path / "topology.yaml"
    topology.write_text(f"""\
broker: {{router: "tcp://127.0.0.1:{router}", xsub: "tcp://127.0.0.1:{xsub}", xpub: "tcp://127.0.0.1:{xpub}"}}
defaults:
  store: {{path: {tmp_path / "store"}}}
  data_dictionary: {conformance_dir() / "spec" / "FIX44.xml"}
sessions:
  client: {{role: acceptor, sender_comp_id: GATEWAY, target_comp_id: TRADER, host: 127.0.0.1, port: {port}}}
""")
    env = {**os.environ, CACHE_DIR_ENV: str(tmp_path / "cache")}
    command = [sys.executable, "-m", "actors.gateway.session_actor", "--config", str(topology), "--session", "client"]

    def start(name: str) -> set[str]:
        child = children.start(name, command, env=env)
        wait_listening(port, child, children)
        mapped = mapped_extensions(child.pid)
        assert child.terminate() == 0, child.report("the actor did not stop cleanly")
        return mapped

    assert start("cold") >= {"pyexpat", "_yaml"}  # parsed both files, and cached what it derived
    assert start("warm") == set(), "a restart on unchanged files loaded a parser"
    assert (tmp_path / "cache" / "dictionaries").is_dir() and (tmp_path / "cache" / "yaml").is_dir()

