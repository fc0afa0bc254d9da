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

import slixmpp

PORT = int(sys.argv[1])


def client(jid, password, priority=0):
    c = slixmpp.ClientXMPP(jid, password)
    for plugin in ("xep_0030", "xep_0092", "xep_0199", "xep_0203"):
        c.register_plugin(plugin)

    async def no_dns(domain, port=None):
        return [("127.0.0.1", "127.0.0.1", PORT)]

    c.get_dns_records = no_dns
    started = asyncio.Event()

    async def start(_):
        await c.get_roster()
        c.send_presence(ppriority=priority)
        started.set()

    c.add_event_handler("session_start", start)
    c.started = started
    return c


async def scenario():
    romeo = client("romeo@localhost/orchard", "j00l13t")
    romeo.connect(("127.0.0.1", PORT), use_ssl=False, force_starttls=False, disable_starttls=True)
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
    juliet.connect(("127.0.0.1", PORT), use_ssl=False, force_starttls=False, disable_starttls=True)
    msg = await asyncio.wait_for(got, 10)
    delayed = msg["delay"]["stamp"] is not None
    print("OFFLINE", msg["body"], "delayed" if delayed else "undelayed", flush=True)

    garden = client("juliet@localhost/garden", "r0m30", priority=1)
    garden_got = []
    garden.add_event_handler("message", lambda m: garden_got.append(m["body"]))
    garden.connect(("127.0.0.1", PORT), use_ssl=False, force_starttls=False, disable_starttls=True)
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


try:
    ok = asyncio.get_event_loop().run_until_complete(scenario())
except Exception as e:  # a timeout or protocol failure is a test failure
    print("FAILED", repr(e), flush=True)
    ok = False
sys.exit(0 if ok else 1)
