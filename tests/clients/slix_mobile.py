"""Stream management, carbons, blocking and last activity with slixmpp.

usage: slix_mobile.py PORT

juliet logs in twice (phone and desktop), each with slixmpp's XEP-0198
plugin (which enables stream management with resumption when the server
offers it) and message carbons (XEP-0280) enabled. romeo sends the phone
a message: the desktop must get a received carbon. The phone blocks the
nurse (XEP-0191) and reads its blocklist back; romeo asks the server for
its uptime (XEP-0012). Prints milestones; exits 0 only if all worked.
"""
import asyncio
import sys

from slix_common import client as common_client
from slix_common import connect, run

PORT = int(sys.argv[1])
PLUGINS = ("xep_0030", "xep_0198", "xep_0280", "xep_0191", "xep_0012")


def client(jid, password):
    """A client that reads its roster before its initial presence, and
    notes when stream management is on (`sm`)."""
    c = common_client(jid, password, PORT, PLUGINS, prepare=lambda c: c.get_roster())
    c.sm = asyncio.Event()
    c.add_event_handler("sm_enabled", lambda _: c.sm.set())
    return c


async def scenario():
    phone = client("juliet@localhost/phone", "r0m30")
    desktop = client("juliet@localhost/desktop", "r0m30")
    romeo = client("romeo@localhost/orchard", "j00l13t")
    for c in (phone, desktop, romeo):
        connect(c, PORT)
    for c in (phone, desktop, romeo):
        await asyncio.wait_for(c.started.wait(), 10)
    await asyncio.wait_for(phone.sm.wait(), 10)
    print("SM", "enabled", "resumable" if phone["xep_0198"].sm_id else "not-resumable", flush=True)

    await phone["xep_0280"].enable(timeout=5)
    await desktop["xep_0280"].enable(timeout=5)
    print("CARBONS", "enabled", flush=True)
    copied = asyncio.get_event_loop().create_future()

    def carbon(msg):
        if not copied.done():
            copied.set_result(msg["carbon_received"]["body"])

    desktop.add_event_handler("carbon_received", carbon)
    romeo.send_message(mto="juliet@localhost/phone", mbody="Wherefore art thou", mtype="chat")
    body = await asyncio.wait_for(copied, 10)
    print("CARBON", body, flush=True)

    await phone["xep_0191"].block(["nurse@localhost"], timeout=5)
    blocked = await phone["xep_0191"].get_blocked(timeout=5)
    items = sorted(str(j) for j in blocked["blocklist"]["items"])
    print("BLOCKED", ",".join(items), flush=True)

    last = await romeo["xep_0012"].get_last_activity("localhost", timeout=5)
    seconds = last["last_activity"]["seconds"]
    print("UPTIME", "ok" if seconds >= 0 else "bad", flush=True)
    for c in (phone, desktop, romeo):
        c.disconnect()
    return (
        phone["xep_0198"].sm_id is not None
        and body == "Wherefore art thou"
        and items == ["nurse@localhost"]
    )


run(scenario)
