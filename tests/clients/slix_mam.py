"""Message archive paging with slixmpp.

usage: slix_mam.py PORT

romeo sends juliet five chats; juliet's client pages through her archive
(XEP-0313) two messages at a time with result set management (XEP-0059),
oldest first. Prints what it read; exits 0 only if it read all five, in
order, each with the stanza-id its delivery carried (compared by body: a
chat sent before juliet's presence reached the server waits offline and
arrives after later ones, though it is archived in sending order).
"""
import asyncio
import sys

from slix_common import juliet_and_romeo, run

PORT = int(sys.argv[1])
BODIES = ["one", "two", "three", "four", "five"]


PLUGINS = ("xep_0030", "xep_0059", "xep_0313", "xep_0359")


async def scenario():
    juliet, romeo = await juliet_and_romeo(PORT, PLUGINS)

    live = {}
    got_all = asyncio.Event()

    def on_message(msg):
        if msg["body"]:
            live[msg["body"]] = msg["stanza_id"]["id"]
            if len(live) == len(BODIES):
                got_all.set()

    juliet.add_event_handler("message", on_message)
    for body in BODIES:
        romeo.send_message(mto="juliet@localhost", mbody=body, mtype="chat")
    await asyncio.wait_for(got_all.wait(), 10)

    read = []
    ids = {}
    async for result in juliet["xep_0313"].iterate(rsm={"max": 2}):
        forwarded = result["mam_result"]["forwarded"]
        body = forwarded["stanza"]["body"]
        read.append(body)
        ids[body] = result["mam_result"]["id"]
    print("MAM", ",".join(read), flush=True)
    print("IDS", "match" if ids == live else "differ %s %s" % (ids, live), flush=True)
    for c in (juliet, romeo):
        c.disconnect()
    return read == BODIES and ids == live


run(scenario)
