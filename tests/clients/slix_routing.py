"""Offline delivery, priorities, iq round trips, ping and disco with slixmpp.

usage: slix_routing.py PORT

romeo (j00l13t) sends juliet (r0m30, offline) a chat message, pings the
server and queries its disco#info; then juliet logs in and must receive the
message with a XEP-0203 delay. juliet logs in a second resource at a lower
priority: a message to her bare JID must reach the higher one only, and an
iq (software version) from romeo to the lower one's full JID must be
answered by that client. Prints milestones; exits 0 only if all worked.
"""
import asyncio
import sys

from slix_common import client as common_client
from slix_common import connect, run

PORT = int(sys.argv[1])
PLUGINS = ("xep_0030", "xep_0092", "xep_0199", "xep_0203")


def client(jid, password, priority=0):
    """A client that reads its roster, then is available at `priority`."""
    return common_client(
        jid, password, PORT, PLUGINS, prepare=lambda c: c.get_roster(), priority=priority
    )


async def scenario():
    romeo = client("romeo@localhost/orchard", "j00l13t")
    connect(romeo, PORT)
    await asyncio.wait_for(romeo.started.wait(), 10)
    rtt = await romeo["xep_0199"].ping(jid="localhost", timeout=5)
    print("PING", "ok" if rtt is not None else "none", flush=True)
    info = await romeo["xep_0030"].get_info(jid="localhost", timeout=5)
    features = info["disco_info"]["features"]
    print("DISCO", "urn:xmpp:ping" in features, "msgoffline" in features, flush=True)
    romeo.send_message(mto="juliet@localhost", mbody="Parting is such sweet sorrow", mtype="chat")
    await romeo["xep_0199"].ping(jid="localhost", timeout=5)  # the message is handled

    juliet = client("juliet@localhost/balcony", "r0m30", priority=5)
    got = asyncio.get_event_loop().create_future()

    def message(msg):
        if not got.done():
            got.set_result(msg)

    juliet.add_event_handler("message", message)
    connect(juliet, PORT)
    msg = await asyncio.wait_for(got, 10)
    delayed = msg["delay"]["stamp"] is not None
    print("OFFLINE", msg["body"], "delayed" if delayed else "undelayed", flush=True)

    garden = client("juliet@localhost/garden", "r0m30", priority=1)
    garden_got = []
    garden.add_event_handler("message", lambda m: garden_got.append(m["body"]))
    connect(garden, PORT)
    await asyncio.wait_for(garden.started.wait(), 10)
    got = asyncio.get_event_loop().create_future()
    romeo.send_message(mto="juliet@localhost", mbody="to the highest", mtype="chat")
    msg = await asyncio.wait_for(got, 10)
    await romeo["xep_0199"].ping(jid="localhost", timeout=5)
    # `got` is resolved by the balcony client's message handler only.
    print("PRIORITY", "balcony-got:" + msg["body"], "garden-got" if garden_got else "garden-none", flush=True)

    version = await romeo["xep_0092"].get_version("juliet@localhost/garden", timeout=5)
    print("IQ", version["software_version"]["name"], flush=True)
    for c in (romeo, juliet, garden):
        c.disconnect()
    return (
        delayed
        and msg["body"] == "to the highest"
        and not garden_got
        and version["software_version"]["name"] == "Slixmpp"
    )


run(scenario)
