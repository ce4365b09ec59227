"""Watching a running gateway: ``fixmesh status``, Prometheus scraping ``fixmesh metrics``, the status page.

A whole gateway under supervisord (``tests.system.gateway``) with fixmesh
endpoints trading through it both ways. Then, as an operator would:

* ``fixmesh status`` prints a row per session with the right states and
  counts (``--json`` parsed, ``--watch`` redrawing, a stopped session shown
  as not answering, ``fixmesh ctl status`` the same table);
* a real Prometheus server (Debian's ``prometheus``, started here on
  loopback with a 1 s scrape interval) scrapes ``fixmesh metrics`` and a
  counter read back through its HTTP API matches the traffic;
* the status page, loaded in headless Chromium (Debian's ``chromium`` and
  ``chromedriver``, driven by selenium) while orders flow, shows both halves
  of the pair and their states, and its numbers change without a reload.

The Prometheus and Chromium tests need those binaries; without them they
fail and say how to install them (``.ci/run`` does).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interop import Children, count_received, endpoint_command, free_ports, wait_for_orders, wait_until
from tests.system.gateway import Gateway

pytestmark = [pytest.mark.slow]

FIXMESH = str(Path(sys.executable).parent / "fixmesh")
PROMETHEUS = "/usr/bin/prometheus"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: Where the page's screenshot is copied when set (docs/status-page.png is made this way).
SCREENSHOT_ENV = "FIXMESH_STATUS_PAGE_SCREENSHOT"
HTTP_TIMEOUT_S = 5.0


def need(binary: str, package: str) -> None:
    if not Path(binary).exists():
        pytest.fail(f"{binary} is missing: install Debian's {package} (`apt-get install -y {package}`, as .ci/run "
                    f"does)", pytrace=False)


@pytest.fixture
def gateway(tmp_path: Path, children: Children, request: pytest.FixtureRequest) -> Iterator[Gateway]:
    gw = Gateway(tmp_path / "gateway", children, metrics=getattr(request, "param", False))
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


def trade(children: Children, gateway: Gateway, work: Path, total: int, rate: float) -> tuple[Path, Path]:
    """A venue and a trader endpoint, each sending ``total`` NewOrderSingles at ``rate``; their received logs."""
    venue, trader = work / "venue", work / "trader"
    children.start("venue", endpoint_command("acceptor", gateway.ports.venue, "VENUE", "GATEWAY", venue,
                                             send=total, rate=rate))
    children.start("trader", endpoint_command("initiator", gateway.ports.handler, "TRADER", "GATEWAY", trader,
                                              send=total, rate=rate))
    return venue / "received.log", trader / "received.log"


def fixmesh(*args: str, timeout_s: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FIXMESH, *args], capture_output=True, text=True, timeout=timeout_s)


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
        return json.loads(response.read())


# ------------------------------------------------------------------ fixmesh status

STATUS_TOTAL = 200


def test_status_shows_every_session_with_its_state_and_counts(tmp_path: Path, children: Children,
                                                              gateway: Gateway) -> None:
    logs = trade(children, gateway, tmp_path, STATUS_TOTAL, 200)
    wait_for_orders(children, STATUS_TOTAL, list(logs), timeout_s=60)
    config = str(gateway.topology)

    shown = fixmesh("status", "--config", config)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split()[:4] == ["SESSION", "ROLE", "PAIR", "STATE"], shown.stdout
    table = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(table) == {"client", "venue"}, shown.stdout
    for name, role in (("client", "handler"), ("venue", "driven")):
        row = table[name]
        assert row[1:4] == [role, "client-venue", "CONNECTED"], shown.stdout
        assert row[-1] == "up", shown.stdout  # the pair's health
        # Both ways STATUS_TOTAL application messages: the orders each endpoint sent through the gateway.
        assert row[-5:-3] == [str(STATUS_TOTAL), str(STATUS_TOTAL)], shown.stdout

    as_json = fixmesh("status", "--config", config, "--json")
    assert as_json.returncode == 0, as_json.stderr
    rows = {row["session"]: row for row in json.loads(as_json.stdout)}
    for name in ("client", "venue"):
        row = rows[name]
        assert row["state"] == "CONNECTED" and row["pair_health"] == "up" and row["answered"]
        assert row["messages_in"] == row["messages_out"] == STATUS_TOTAL
        assert row["stats"]["received"] == {"D": STATUS_TOTAL}
        assert row["next_sender"] >= STATUS_TOTAL + 2 and row["next_target"] >= STATUS_TOTAL + 2  # Logon + orders
        assert row["peer_address"].startswith("127.0.0.1:") and row["logged_on_since"].endswith("Z")
    # The forwarded orders' latency was observed on the side that wrote them.
    assert sum(rows["venue"]["stats"]["forward_latency"]["counts"]) == STATUS_TOTAL

    via_ctl = fixmesh("ctl", "--config", config, "status")
    assert via_ctl.returncode == 0 and via_ctl.stdout.splitlines()[0] == lines[0], via_ctl.stdout + via_ctl.stderr

    watched = fixmesh("status", "--config", config, "--watch", "0.3", "--count", "3")
    assert watched.returncode == 0, watched.stderr
    assert watched.stdout.count("\x1b[H\x1b[2J") == 3 and watched.stdout.count("client-venue") >= 6

    gateway.ctl("stop", "venue")
    wait_until(lambda: gateway.state("venue") == "STOPPED", 30, "venue stopped", children)
    stopped = fixmesh("status", "--config", config, "--timeout-s", "1")
    assert stopped.returncode == 1, stopped.stdout
    table = {line.split()[0]: line for line in stopped.stdout.splitlines()[1:3]}
    assert "NO ANSWER" in table["venue"] and table["client"].rstrip().endswith("unknown"), stopped.stdout
    assert "venue: venue is not connected to the broker" in stopped.stdout, stopped.stdout


# ------------------------------------------------------------------ Prometheus

PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: fixmesh
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""
PROM_TOTAL = 300


def query(port: int, promql: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    answer = get(url)
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def value_of(port: int, promql: str) -> float | None:
    result = query(port, promql)
    return float(result[0]["value"][1]) if len(result) == 1 else None


@pytest.mark.parametrize("gateway", [True], indirect=True, ids=["with-metrics"])
def test_prometheus_scrapes_the_metrics_program_and_the_counts_match_the_traffic(
        tmp_path: Path, children: Children, gateway: Gateway) -> None:
    need(PROMETHEUS, "prometheus")
    logs = trade(children, gateway, tmp_path, PROM_TOTAL, 300)
    (prom_port,) = free_ports(1)
    config = tmp_path / "prometheus.yml"
    config.write_text(PROMETHEUS_CONFIG.format(port=gateway.metrics_port))
    children.start("prometheus", [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                  f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"])

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/-/ready", timeout=HTTP_TIMEOUT_S) as r:
                return r.status == 200
        except OSError:
            return False

    wait_until(ready, 60, "prometheus ready", children)
    wait_for_orders(children, PROM_TOTAL, list(logs), timeout_s=60)
    assert count_received(logs[0]) == PROM_TOTAL  # the venue endpoint has every order the trader sent

    received = 'fixmesh_messages_received_total{job="fixmesh",session="client",msg_type="D"}'
    sent = 'fixmesh_messages_sent_total{job="fixmesh",session="venue",msg_type="D"}'
    latency = 'fixmesh_forward_latency_seconds_count{job="fixmesh",session="venue"}'
    wait_until(lambda: value_of(prom_port, received) == PROM_TOTAL and value_of(prom_port, sent) == PROM_TOTAL
               and value_of(prom_port, latency) == PROM_TOTAL, 60,
               f"Prometheus to hold {PROM_TOTAL} orders received by client and sent by venue", children)
    assert value_of(prom_port, 'up{job="fixmesh"}') == 1
    assert value_of(prom_port, 'fixmesh_session_state{session="venue",state="CONNECTED"}') == 1
    assert value_of(prom_port, 'fixmesh_logons_total{session="client"}') == 1
    cpu = value_of(prom_port, 'fixmesh_process_cpu_seconds_total{program="session",name="venue"}')
    assert cpu is not None and cpu > 0
    p99 = value_of(prom_port, 'histogram_quantile(0.99, fixmesh_forward_latency_seconds_bucket{session="venue"})')
    assert p99 is not None and 0 < p99 <= 10


# ------------------------------------------------------------------ the status page in Chromium

PAGE_TOTAL = 4000
PAGE_RATE = 100.0


def chrome() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.mark.parametrize("gateway", [True], indirect=True, ids=["with-metrics"])
def test_the_status_page_shows_the_pair_live_in_headless_chromium(tmp_path: Path, children: Children,
                                                                  gateway: Gateway) -> None:
    need(CHROMIUM, "chromium")
    need(CHROMEDRIVER, "chromium-driver")

    logs = trade(children, gateway, tmp_path, PAGE_TOTAL, PAGE_RATE)
    wait_for_orders(children, 100, list(logs), timeout_s=60)
    url = f"http://127.0.0.1:{gateway.metrics_port}/"
    browser = chrome()
    try:
        browser.set_page_load_timeout(20)
        browser.get(url)

        def texts(selector: str) -> list[str]:
            # Read in one script: the page replaces its elements at each refresh, so an element found by one
            # WebDriver call may be gone by the next (StaleElementReferenceException).
            found = browser.execute_script(
                "return Array.from(document.querySelectorAll(arguments[0]), e => e.innerText.trim());", selector)
            return [str(text) for text in found]

        def field(session: str, name: str) -> str:
            return next(iter(texts(f'[data-session="{session}"] [data-field="{name}"]')), "")

        def health() -> str:
            return next(iter(texts('[data-pair="client-venue"] > h2 [data-field="health"]')), "")

        wait_until(lambda: field("client", "state") == "CONNECTED" and field("venue", "state") == "CONNECTED"
                   and health() == "up", 30, "the page to show both halves CONNECTED", children)
        halves = browser.execute_script("return Array.from(document.querySelectorAll("
                                        "'[data-pair=\"client-venue\"] [data-session]'), e => e.dataset.session);")
        assert halves == ["client", "venue"]
        browser.execute_script("window.fixmeshMarker = 42;")  # gone if the page reloaded
        first = {s: field(s, "messages") for s in ("client", "venue")}
        wait_until(lambda: all(field(s, "messages") not in ("", first[s]) for s in first), 15,
                   "the page's message counts to change", children)
        second = {s: field(s, "messages") for s in ("client", "venue")}
        assert browser.execute_script("return window.fixmeshMarker;") == 42, "the page reloaded"
        for s in first:
            before, after = (int(x) for x in first[s].split(" / ")), (int(x) for x in second[s].split(" / "))
            assert all(b <= a for b, a in zip(before, after, strict=True)) and first[s] != second[s], (first, second)
        assert field("venue", "rates").endswith("msg/s") and field("client", "peer_address").startswith("127.0.0.1:")
        events = texts('[data-session="venue"] ul.events li')
        assert any("CONNECTED" in e for e in events), events
        shot = tmp_path / "status-page.png"
        assert browser.save_screenshot(str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
        if os.environ.get(SCREENSHOT_ENV):
            shutil.copyfile(shot, os.environ[SCREENSHOT_ENV])
    finally:
        browser.quit()
    # Read-only: the server takes no other method than GET.
    request = urllib.request.Request(url + "api/status", method="POST", data=b"{}")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S)
    assert refused.value.code == 405


# ------------------------------------------------------------------ a bus with keys


def test_on_a_bus_with_keys_status_needs_an_operators_key_and_metrics_a_subscribers(tmp_path: Path,
                                                                                   children: Children) -> None:
    gateway = Gateway(tmp_path / "gateway", children, secure=True, metrics=True)
    gateway.start()
    try:
        config = str(gateway.topology)
        keyless = fixmesh("status", "--config", config)
        assert keyless.returncode == 2 and "--key" in keyless.stderr, keyless.stderr

        def answered() -> bool:
            shown = fixmesh("status", "--config", config, "--key", "ops", "--json")
            return shown.returncode == 0 and all(row["answered"] for row in json.loads(shown.stdout))

        wait_until(answered, 30, "both sessions to answer an operator's status", children)
        # A session's key joins the business plane but may not act as an operator's tool: refused at its hello.
        session_key = fixmesh("status", "--config", config, "--key", "client", "--timeout-s", "5")
        assert session_key.returncode == 1, session_key.stdout + session_key.stderr
        assert "client: the broker refused the command: the key 'client' may not act as ctl-client-" in \
            session_key.stdout, session_key.stdout
        # A subscriber's key may not even join the business plane: the broker never answers it.
        reader = fixmesh("status", "--config", config, "--key", "watcher", "--timeout-s", "1")
        assert reader.returncode == 1 and "the broker did not welcome this tool within 1 s" in reader.stdout, (
            reader.stdout + reader.stderr)

        # The metrics program reads the event plane with the subscriber's key (the harness gives it `watcher`).
        page_url = f"http://127.0.0.1:{gateway.metrics_port}/api/status"
        wait_until(lambda: all(get(page_url)["pairs"][0][half]["answered"] for half in ("handler", "driven")), 30,
                   "the metrics program to hear both sessions' readings", children)
    finally:
        gateway.stop()
