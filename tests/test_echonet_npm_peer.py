"""Interoperability with a second independent ECHONET Lite controller: the npm package
``echonet-lite`` 2.16.2 (the KAIT-lineage library much used in Japanese HEMS work) against our
node (C1, F1–F6), beside pychonet (``tests/test_echonet_pychonet.py``).

The library sends every request from a fresh socket on port 23610 (3610 + 20000) and receives
on 0.0.0.0:3610, so it hears our node only because the node answers to port 3610 of the
requester (the ECHONET Lite port rule, :mod:`drready.echonet.transport`). It can only *receive*
on all interfaces; its ``v4`` option binds what it *sends*, so it gets its own loopback address
(:data:`PEER`) and the node another (:data:`NODE`). Our harness script wraps Node's ``dgram`` so
that the library can never send to anything but a loopback address or the ECHONET Lite
multicast group on the loopback interface, and joins the group on that interface (the library
would join on the default one).

The package loads ``date-utils`` without declaring it (2.16.2's package.json lists no
dependency), so the test installs that too, pinned (:data:`DATE_UTILS`). The packages are
installed from npm into this test's own cache folder
(``$TMPDIR/drready-tests/npm-echonet-lite-2.16.2``) on first use and reused there afterwards.
Without Node or npm (or without the registry on first use) the test skips with the reason; CI
(``DRREADY_NO_SKIPS=1``) turns that skip into a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from drready.echonet.objects import EchonetObject
from drready.echonet.propmap import decode_property_map
from tests.echonet_helpers import make_node

VERSION = "2.16.2"
DATE_UTILS = "1.2.21"  # required by echonet-lite's index.js, not declared by it
NODE = "127.0.5.1"  # our node
PEER = "127.0.5.2"  # what the library sends from
CACHE = Path(tempfile.gettempdir()) / "drready-tests" / f"npm-echonet-lite-{VERSION}"

HARNESS = r"""
'use strict';
const dgram = require('dgram');
const NODE = process.env.EL_NODE, PEER = process.env.EL_PEER;
const allowed = (a) => typeof a === 'string' && (a.startsWith('127.') || a === '224.0.23.0');
const send = dgram.Socket.prototype.send;
dgram.Socket.prototype.send = function (...args) {
  const address = args.find((a, i) => i > 0 && typeof a === 'string');
  if (!allowed(address)) throw new Error('refusing to send to ' + address);
  return send.apply(this, args);
};
const join = dgram.Socket.prototype.addMembership;
dgram.Socket.prototype.addMembership = function (group) { return join.call(this, group, PEER); };
const bind = dgram.Socket.prototype.bind;
dgram.Socket.prototype.bind = function (...args) {
  const r = bind.apply(this, args);
  this.once('listening', () => { try { this.setMulticastInterface(PEER); } catch (e) {} });
  return r;
};
const EL = require('echonet-lite');
const seen = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function answer(esvs, epc, within = 5000) {
  const t = Date.now();
  while (Date.now() - t < within) {
    const i = seen.findIndex(
      (e) => esvs.includes(e.ESV) && e.SEOJ === '026b01' && epc in e.DETAILs);
    if (i >= 0) return seen.splice(i, 1)[0];
    await sleep(20);
  }
  return null;
}
(async () => {
  const out = {};
  await EL.initialize(['05ff01'], (rinfo, els, err) => {
    if (!err && els && rinfo.address === NODE) seen.push(els);
  }, 4, {v4: PEER, ignoreMe: false, autoGetProperties: true, autoGetDelay: 50, debugMode: false});
  EL.search();
  const t = Date.now();
  let dev = null;
  while (Date.now() - t < 15000) {
    dev = (EL.facilities[NODE] || {})['026b01'];
    if (dev && dev['9f'] && dev['e1'] !== undefined) break;
    await sleep(50);
  }
  out.facilities = EL.facilities[NODE] || null;
  EL.sendOPC1(NODE, '05ff01', '026b01', EL.GET, 'e1', '');
  const e1 = await answer([EL.GET_RES], 'e1');
  out.e1 = e1 && e1.DETAILs.e1;
  EL.sendOPC1(NODE, '05ff01', '026b01', EL.SETC, 'c7', '01');
  out.set_c7 = (await answer([EL.SET_RES, EL.SETC_SNA], 'c7') || {}).ESV || null;
  EL.sendOPC1(NODE, '05ff01', '026b01', EL.SETC, 'ca', '0d');
  out.set_ca = (await answer([EL.SET_RES, EL.SETC_SNA], 'ca') || {}).ESV || null;
  EL.sendOPC1(NODE, '05ff01', '026b01', EL.GET, 'ca', '');
  out.get_ca = ((await answer([EL.GET_RES], 'ca')) || {DETAILs: {}}).DETAILs.ca || null;
  EL.sendOPC1(NODE, '05ff01', '026b01', EL.GET, 'c7', '');
  out.get_c7 = ((await answer([EL.GET_RES], 'c7')) || {DETAILs: {}}).DETAILs.c7 || null;
  EL.sendOPC1(NODE, '05ff01', '026b01', EL.SETC, 'ca', '20');
  out.set_ca_bad = (await answer([EL.SET_RES, EL.SETC_SNA], 'ca') || {}).ESV || null;
  process.stdout.write(JSON.stringify(out) + '\n');
  EL.release();
  process.exit(0);
})().catch((e) => { process.stderr.write(String(e && e.stack || e) + '\n'); process.exit(3); });
"""


def _install() -> Path:
    """The package folder in the test's cache, installed from npm on first use."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip(
            f"Node.js and npm are needed for the npm echonet-lite peer (node={node}, npm={npm})"
        )
    package = CACHE / "node_modules" / "echonet-lite" / "package.json"
    helper = CACHE / "node_modules" / "date-utils" / "package.json"
    if not package.exists() or not helper.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(CACHE),
                f"echonet-lite@{VERSION}",
                f"date-utils@{DATE_UTILS}",
                "--no-audit",
                "--no-fund",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0 or not package.exists():
            pytest.skip(f"npm install echonet-lite@{VERSION} failed: {done.stderr.strip()[-300:]}")
    if json.loads(package.read_text())["version"] != VERSION:
        pytest.skip(f"{package} is not version {VERSION}")
    return CACHE


def _listed(text: str) -> set[int]:
    """EPCs of a property map as the library stores it: its own list form even for 16 or more
    EPCs (count, then the EPCs), else the ECHONET Lite notation."""
    edt = bytes.fromhex(text)
    if len(edt) == 1 + edt[0]:
        return set(edt[1:])
    return set(decode_property_map(edt))


def test_the_npm_echonet_lite_controller_discovers_reads_and_sets_our_node() -> None:
    cache = _install()
    script = cache / "drready_harness.js"
    script.write_text(HARNESS)

    node_objects: list[EchonetObject] = []

    async def run() -> tuple[dict[str, Any], list[tuple[str, int]], Any]:
        node, heater = make_node(NODE, serial="NPM0000001")
        node_objects.extend(node.core.objects)
        await node.start()
        sources: list[tuple[str, int]] = []
        assert node.endpoint is not None
        node.endpoint.attach_node(lambda data, addr: sources.append(addr))
        try:
            proc = await asyncio.create_subprocess_exec(
                "node",
                str(script),
                cwd=cache,
                env={
                    **os.environ,
                    "EL_NODE": NODE,
                    "EL_PEER": PEER,
                    "NODE_PATH": str(cache / "node_modules"),
                },
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 90)
            assert proc.returncode == 0, err.decode()
            return json.loads(out.decode().strip().splitlines()[-1]), sources, heater
        finally:
            await node.close()

    got, sources, heater = asyncio.run(run())
    # it sent from its own address and port 23610, and heard our answers on 3610
    assert sources and {s for s in sources} == {(PEER, 23610)}
    facilities = got["facilities"]
    assert isinstance(facilities, dict), got
    assert facilities["0ef001"]["d6"] == "01026b01"  # discovered: one water heater
    dev = facilities["026b01"]
    obj = next(o for o in node_objects if o.eoj.class_id == 0x026B)
    # the property maps it read (it stores a bitmap map as a plain list) are what we serve
    assert _listed(dev["9d"]) == set(obj.announce_map())
    assert _listed(dev["9e"]) == set(obj.set_map())
    assert _listed(dev["9f"]) == set(obj.get_map())
    assert int(dev["e2"], 16) == 460  # its automatic Get of every readable property
    assert int(str(got["e1"]), 16) == heater.hot_water_in_tank_l
    assert (got["set_c7"], got["set_ca"]) == ("71", "71")  # Set_Res
    assert (got["get_c7"], got["get_ca"]) == ("01", "0d")
    assert got["set_ca_bad"] == "51"  # SetC_SNA: 0x20 is no shift time
    assert heater.energy_shift_participation and heater.shift_time(1) == 13
