"""OMEMO device lists and bundles through PEP, between two client libraries.

usage: omemo_pep.py PORT

juliet (balcony) runs slixmpp; romeo (garden) runs nbxmpp, Gajim's library
(Debian: python3-nbxmpp). Both speak legacy OMEMO (XEP-0384 0.3, namespace
eu.siacs.conversations.axolotl) as Conversations and Gajim deploy it:

- they become mutual contacts (each pre-approves and subscribes);
- both advertise eu.siacs.conversations.axolotl.devicelist+notify in their
  entity caps (XEP-0115), so the server learns their interest by disco#info;
- juliet checks her account's disco#info for the pubsub/pep identity
  (ACCOUNT; Conversations does not use PEP without it), then publishes her
  bundle to eu.siacs.conversations.axolotl.bundles:ID and her device list to
  eu.siacs.conversations.axolotl.devicelist, both as item 'current' with
  publish-options pubsub#access_model=open, falling back as Conversations
  does to configuring the node and publishing again when the server answers
  precondition-not-met;
- romeo gets the device list notification (DEVICELIST) and fetches her
  bundle from juliet@localhost (BUNDLE);
- romeo reads his own device list, adds his device and publishes it and his
  bundle through nbxmpp's OMEMO module (which sends publish-options
  persist_items and access_model=open, and reconfigures on
  precondition-not-met); juliet gets his device list notification
  (ROMEONOTIFY), fetches it (ROMEO) and then his bundle (ROMEOBUNDLE).

Keys are real Curve25519 keys with an XEdDSA signature on the signed prekey
when python3-xeddsa is installed (the fetcher then checks it), random bytes
otherwise. Device ids are new in each run, so items left from an earlier run
cannot pass for this one's. Prints milestones; exits 0 only if all worked.
"""
import asyncio
import base64
import os
import random
import sys

import gi

gi.require_version("GLib", "2.0")
from gi.repository import GLib  # noqa: E402

from nbxmpp.client import Client as NbClient  # noqa: E402
from nbxmpp.const import ConnectionProtocol, ConnectionType  # noqa: E402
from nbxmpp.namespaces import Namespace  # noqa: E402
from nbxmpp.structs import DiscoIdentity, OMEMOBundle, StanzaHandler  # noqa: E402
from slix_common import caps_ready, client, connect, expect, run, until  # noqa: E402
from slixmpp.exceptions import IqError  # noqa: E402
from slixmpp.xmlstream import ET  # noqa: E402

try:
    import xeddsa
except ImportError:  # keys become random bytes, signatures unchecked
    xeddsa = None

PORT = int(sys.argv[1])
AXOLOTL = "eu.siacs.conversations.axolotl"
DEVICELIST = AXOLOTL + ".devicelist"
BUNDLES = AXOLOTL + ".bundles"
PUBSUB_ERRORS = "http://jabber.org/protocol/pubsub#errors"
PREKEYS = 100  # as many as Conversations and Gajim publish
JULIET, ROMEO = "juliet@localhost", "romeo@localhost"
SLIX_PLUGINS = ("xep_0030", "xep_0004", "xep_0060", "xep_0115", "xep_0163")


# --- keys -------------------------------------------------------------------


def make_keys():
    """A bundle's public parts: identity key, signed prekey (id 1) with its
    signature, PREKEYS one-time prekeys; keys serialised as libsignal does
    (0x05 then the Curve25519 point)."""

    def keypair():
        priv = os.urandom(32)
        if xeddsa is None:
            return priv, b"\x05" + os.urandom(32)
        return priv, b"\x05" + xeddsa.priv_to_curve25519_pub(priv)

    ik_priv, ik = keypair()
    _, spk = keypair()
    if xeddsa is None:
        sig = os.urandom(64)
    else:
        sig = xeddsa.ed25519_priv_sign(xeddsa.priv_force_sign(ik_priv, False), spk, os.urandom(64))
    otpks = [{"id": i, "key": keypair()[1]} for i in range(1, PREKEYS + 1)]
    return OMEMOBundle(spk={"id": 1, "key": spk}, spk_signature=sig, ik=ik, otpks=otpks)


def signature_ok(bundle):
    """Whether the signed prekey's signature verifies under the identity key
    (None when xeddsa is not installed)."""
    if xeddsa is None:
        return None
    try:
        edpub = xeddsa.curve25519_pub_to_ed25519_pub(bytes(bundle.ik[1:]), False)
        return xeddsa.ed25519_verify(bytes(bundle.spk_signature), edpub, bytes(bundle.spk["key"]))
    except Exception:
        return False


# --- juliet: slixmpp ----------------------------------------------------------


def b64(data):
    return base64.b64encode(data).decode()


def bundle_xml(bundle):
    q = lambda name: f"{{{AXOLOTL}}}{name}"  # noqa: E731
    el = ET.Element(q("bundle"))
    spk = ET.SubElement(el, q("signedPreKeyPublic"), signedPreKeyId=str(bundle.spk["id"]))
    spk.text = b64(bundle.spk["key"])
    ET.SubElement(el, q("signedPreKeySignature")).text = b64(bundle.spk_signature)
    ET.SubElement(el, q("identityKey")).text = b64(bundle.ik)
    prekeys = ET.SubElement(el, q("prekeys"))
    for pk in bundle.otpks:
        ET.SubElement(prekeys, q("preKeyPublic"), preKeyId=str(pk["id"])).text = b64(pk["key"])
    return el


def parse_bundle_xml(el):
    q = lambda name: f"{{{AXOLOTL}}}{name}"  # noqa: E731
    spk = el.find(q("signedPreKeyPublic"))
    otpks = [
        {"id": int(pk.get("preKeyId")), "key": base64.b64decode(pk.text)}
        for pk in el.find(q("prekeys")).findall(q("preKeyPublic"))
    ]
    return OMEMOBundle(
        spk={"id": int(spk.get("signedPreKeyId")), "key": base64.b64decode(spk.text)},
        spk_signature=base64.b64decode(el.find(q("signedPreKeySignature")).text),
        ik=base64.b64decode(el.find(q("identityKey")).text),
        otpks=otpks,
    )


def devicelist_xml(ids):
    el = ET.Element(f"{{{AXOLOTL}}}list")
    for i in ids:
        ET.SubElement(el, f"{{{AXOLOTL}}}device", id=str(i))
    return el


def device_ids(item_xml):
    lst = item_xml.find(f"{{{AXOLOTL}}}list")
    return [int(d.get("id")) for d in lst.findall(f"{{{AXOLOTL}}}device")] if lst is not None else []


def form(c, form_type, **fields):
    f = c["xep_0004"].make_form(ftype="submit")
    f.add_field(var="FORM_TYPE", ftype="hidden", value=form_type)
    for var, value in fields.items():
        f.add_field(var="pubsub#" + var, value=value)
    return f


async def publish_open(c, node, payload):
    """Publish item 'current' with publish-options access_model=open; on
    precondition-not-met configure the node that way and publish again, as
    Conversations does."""

    def send():
        opts = form(c, "http://jabber.org/protocol/pubsub#publish-options", access_model="open")
        return c["xep_0060"].publish(None, node, id="current", payload=payload, options=opts, timeout=5)

    try:
        await send()
    except IqError as e:
        if e.iq.xml.find(f".//{{{PUBSUB_ERRORS}}}precondition-not-met") is None:
            raise
        print("PRECONDITION", node, "- configuring access_model=open", flush=True)
        config = form(c, "http://jabber.org/protocol/pubsub#node_config", access_model="open")
        await c["xep_0060"].set_node_config(None, node, config, timeout=5)
        await send()


async def juliet_prepare(c):
    c["xep_0163"].add_interest(DEVICELIST)
    await caps_ready(c)


# --- romeo: nbxmpp on GLib, driven from asyncio -------------------------------


async def pump_glib():
    """Run GLib's default main context (nbxmpp's sockets and timers) inside
    the asyncio loop, so both libraries share one thread."""
    ctx = GLib.MainContext.default()
    while True:
        for _ in range(100):  # bounded: an idle source keeps pending() true
            if not ctx.pending():
                break
            ctx.iteration(False)
        await asyncio.sleep(0.005)


class Romeo:
    CAPS_URI = "https://rookery.test/omemo_pep/nbxmpp"

    def __init__(self, port, resource="garden"):
        self.loop = asyncio.get_event_loop()
        self.connected = self.loop.create_future()
        self.gone = self.loop.create_future()
        self.devicelists = asyncio.Queue()
        self.available = set()
        c = self.c = NbClient(log_context="romeo")
        c.set_domain("localhost")
        c.set_username("romeo")
        c.set_resource(resource)
        c.set_password("j00l13t")
        c.set_custom_host(f"127.0.0.1:{port}", ConnectionProtocol.TCP, ConnectionType.PLAIN)
        c.subscribe("connected", self._connected)
        c.subscribe("connection-failed", self._failed)
        c.subscribe("disconnected", self._disconnected)
        c.register_handler(StanzaHandler(name="presence", callback=self._presence, priority=50))
        c.register_handler(
            StanzaHandler(name="message", callback=self._event, ns=Namespace.PUBSUB_EVENT, priority=50)
        )
        c.connect()

    def _connected(self, _client, _signal):
        if not self.connected.done():
            self.connected.set_result(True)

    def _failed(self, _client, _signal):
        if not self.connected.done():
            self.connected.set_exception(ConnectionError(f"romeo: connection failed {self.c.get_error()}"))

    def _disconnected(self, _client, _signal):
        if not self.gone.done():
            self.gone.set_result(True)
        if not self.connected.done():
            self.connected.set_exception(ConnectionError(f"romeo: disconnected {self.c.get_error()}"))

    def _presence(self, _client, stanza, props):
        frm = props.jid
        if props.type.value == "subscribe" and frm.bare == JULIET:
            self.presence(typ="subscribed", jid=JULIET)
        elif props.type.is_available:
            self.available.add(str(frm))
        elif props.type.is_unavailable:
            self.available.discard(str(frm))

    def _event(self, _client, stanza, props):
        ev = props.pubsub_event
        if ev is not None and ev.node == DEVICELIST and ev.data is not None:
            self.devicelists.put_nowait((str(props.jid), [int(d) for d in ev.data]))

    def task(self, fn, *args, **kwargs):
        """Run an nbxmpp task (callback style) as an awaitable, bounded by
        nbxmpp's own timeout and, should its callback never come, asyncio's."""
        fut = self.loop.create_future()
        timeout = kwargs.pop("timeout", 5)

        def done(task):
            if fut.done():
                return
            try:
                fut.set_result(task.finish())
            except Exception as e:  # an error reply or a timeout
                fut.set_exception(e)

        fut.keep = done  # nbxmpp holds task callbacks only weakly
        fn(*args, callback=done, timeout=timeout, **kwargs)
        return asyncio.wait_for(fut, timeout + 2)

    def module(self, name):
        return self.c.get_module(name)

    def set_caps(self):
        features = [
            Namespace.DISCO_INFO,
            Namespace.CAPS,
            AXOLOTL,
            DEVICELIST + "+notify",
        ]
        identity = DiscoIdentity(category="client", type="pc", name="Romeo (nbxmpp)")
        self.module("EntityCaps").set_caps([identity], features, self.CAPS_URI)
        return self.module("EntityCaps").caps

    def presence(self, **kwargs):
        self.module("BasePresence").send(**kwargs)

    def available_presence(self):
        caps = self.module("EntityCaps").caps
        self.presence(caps={"hash": caps.hash, "node": caps.node, "ver": caps.ver})


# --- the scenario ---------------------------------------------------------------


async def scenario():
    pump = asyncio.ensure_future(pump_glib())
    try:
        return await exchange()
    finally:
        pump.cancel()


async def exchange():
    juliet_id = random.randint(1, 2**31 - 1)
    romeo_id = random.randint(1, 2**31 - 1)
    juliet_keys, romeo_keys = make_keys(), make_keys()
    print("KEYS", "xeddsa" if xeddsa else "random", flush=True)

    # juliet (slixmpp) and romeo (nbxmpp) log in and announce their caps
    juliet = client("juliet@localhost/balcony", "r0m30", PORT, SLIX_PLUGINS, prepare=juliet_prepare)
    romeo_lists = []

    def juliet_event(msg):
        if msg["pubsub_event"]["items"]["node"] == DEVICELIST:
            for item in msg["pubsub_event"]["items"]["substanzas"]:
                romeo_lists.append((str(msg["from"]), device_ids(item.xml)))

    juliet.add_event_handler("pubsub_publish", juliet_event)
    connect(juliet, PORT)
    romeo = Romeo(PORT)
    await asyncio.wait_for(asyncio.gather(juliet.started.wait(), romeo.connected), 10)
    romeo_caps = romeo.set_caps()
    await romeo.task(romeo.module("Roster").request_roster)
    romeo.available_presence()
    print("CAPS", juliet.boundjid, await juliet["xep_0115"].get_verstring(), flush=True)
    print("CAPS", romeo.c.get_bound_jid(), romeo_caps.ver, flush=True)

    # mutual subscription: each pre-approves the other and asks
    await juliet.get_roster(timeout=5)
    juliet.send_presence(pto=ROMEO, ptype="subscribed")
    juliet.send_presence(pto=ROMEO, ptype="subscribe")
    romeo.presence(typ="subscribed", jid=JULIET)
    romeo.presence(typ="subscribe", jid=JULIET)

    def juliet_has_romeo():
        item = juliet.client_roster[ROMEO]
        return item["subscription"] == "both" and bool(item.resources)

    def romeo_has_juliet():
        return any(j.startswith(JULIET + "/") for j in romeo.available)

    await until(lambda: juliet_has_romeo() and romeo_has_juliet(), 10, "mutual subscription and presence")
    # presence again, now that each is the other's contact, caps included
    juliet.send_presence()
    romeo.available_presence()
    print("SUBSCRIBED both", flush=True)

    # juliet -> romeo; first, as Conversations does, check that her account
    # is a PEP service (identity pubsub/pep on her bare JID's disco#info)
    info = (await juliet["xep_0030"].get_info(JULIET, timeout=5))["disco_info"]
    pep = any(i[:2] == ("pubsub", "pep") for i in info["identities"])
    options = "http://jabber.org/protocol/pubsub#publish-options" in info["features"]
    print("ACCOUNT pep", pep, "publish-options", options, flush=True)
    if not pep:
        print("FAILED no <identity category='pubsub' type='pep'/> on", JULIET, flush=True)
        return False
    await publish_open(juliet, f"{BUNDLES}:{juliet_id}", bundle_xml(juliet_keys))
    await publish_open(juliet, DEVICELIST, devicelist_xml([juliet_id]))
    print("PUBLISHED juliet", juliet_id, flush=True)
    _, ids = await expect(
        romeo.devicelists, lambda f, ids: f == JULIET and juliet_id in ids, "juliet's device list"
    )
    print("DEVICELIST", " ".join(map(str, ids)), flush=True)
    bundle = await romeo.task(romeo.module("OMEMO").request_bundle, JULIET, juliet_id)
    print("BUNDLE", juliet_id, len(bundle.otpks), "signature", signature_ok(bundle), flush=True)
    if bundle.ik != juliet_keys.ik or len(bundle.otpks) != PREKEYS or signature_ok(bundle) is False:
        print("FAILED juliet's bundle differs from what she published", flush=True)
        return False

    # romeo -> juliet: merge into his own list, as OMEMO clients do
    try:
        own = await romeo.task(romeo.module("OMEMO").request_devicelist)
    except Exception as e:  # no node yet: item-not-found
        print("OWNLIST none", type(e).__name__, getattr(e, "condition", ""), flush=True)
        own = None
    ids = sorted(set(int(i) for i in (own or [])) | {romeo_id})
    await romeo.task(romeo.module("OMEMO").set_bundle, romeo_keys, romeo_id)
    await romeo.task(romeo.module("OMEMO").set_devicelist, ids)
    print("PUBLISHED romeo", romeo_id, "list", len(ids), flush=True)

    notified = lambda: any(f == ROMEO and romeo_id in lst for f, lst in romeo_lists)  # noqa: E731
    await until(notified, 10, "romeo's device list notification")
    print("ROMEONOTIFY", romeo_id, flush=True)
    res = await juliet["xep_0060"].get_items(ROMEO, DEVICELIST, timeout=5)
    items = res["pubsub"]["items"]["substanzas"]
    listed = device_ids(items[0].xml) if items else []
    print("ROMEO", " ".join(map(str, listed)), flush=True)
    if romeo_id not in listed:
        print("FAILED romeo's device", romeo_id, "not in his list", flush=True)
        return False
    res = await juliet["xep_0060"].get_items(ROMEO, f"{BUNDLES}:{romeo_id}", max_items=1, timeout=5)
    items = res["pubsub"]["items"]["substanzas"]
    el = items[0].xml.find(f"{{{AXOLOTL}}}bundle") if items else None
    if el is None:
        print("FAILED no bundle item for", romeo_id, flush=True)
        return False
    got = parse_bundle_xml(el)
    print("ROMEOBUNDLE", romeo_id, len(got.otpks), "signature", signature_ok(got), flush=True)
    ok = got.ik == romeo_keys.ik and len(got.otpks) == PREKEYS and signature_ok(got) is not False

    romeo.c.disconnect()
    await asyncio.wait_for(asyncio.gather(juliet.disconnect(), romeo.gone), 5)
    return ok


run(scenario)
