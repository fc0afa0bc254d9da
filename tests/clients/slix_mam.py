"""Message archive paging with slixmpp.

usage: slix_mam.py PORT

romeo sends juliet five chats; juliet's client pages through her archive
(XEP-0313) two messages at a time with result set management (XEP-0059),
oldest first. Prints what it read; exits 0 only if it read all five, in
order, each with the stanza-id its delivery carried.
"""
import asyncio
import sys

import slixmpp

PORT = int(sys.argv[1])
BODIES = ["one", "two", "three", "four", "five"]


def client(jid, password):
    c = slixmpp.ClientXMPP(jid, password)
    for plugin in ("xep_0030", "xep_0059", "xep_0313", "xep_0359"):
        c.register_plugin(plugin)

    async def no_dns(domain, port=None):
        return [("127.0.0.1", "127.0.0.1", PORT)]

    c.get_dns_records = no_dns
    c.started = asyncio.Event()

    def start(_):
        c.send_presence()
        c.started.set()

    c.add_event_handler("session_start", start)
    return c


def connect(c):
    c.connect(("127.0.0.1", PORT), use_ssl=False, force_starttls=False, disable_starttls=True)


async def scenario():
    juliet = client("juliet@localhost/balcony", "r0m30")
    romeo = client("romeo@localhost/orchard", "j00l13t")
    for c in (juliet, romeo):
        connect(c)
    for c in (juliet, romeo):
        await asyncio.wait_for(c.started.wait(), 10)

    live = []
    got_all = asyncio.Event()

    def on_message(msg):
        if msg["body"]:
            live.append(msg["stanza_id"]["id"])
            if len(live) == len(BODIES):
                got_all.set()

    juliet.add_event_handler("message", on_message)
    for body in BODIES:
        romeo.send_message(mto="juliet@localhost", mbody=body, mtype="chat")
    await asyncio.wait_for(got_all.wait(), 10)

    read = []
    ids = []
    async for result in juliet["xep_0313"].iterate(rsm={"max": 2}):
        forwarded = result["mam_result"]["forwarded"]
        read.append(forwarded["stanza"]["body"])
        ids.append(result["mam_result"]["id"])
    print("MAM", ",".join(read), flush=True)
    print("IDS", "match" if ids == live else "differ %s %s" % (ids, live), flush=True)
    for c in (juliet, romeo):
        c.disconnect()
    return read == BODIES and ids == live


try:
    ok = asyncio.get_event_loop().run_until_complete(scenario())
except Exception as e:  # a timeout or protocol failure is a test failure
    print("FAILED", repr(e), flush=True)
    ok = False
sys.exit(0 if ok else 1)
