"""Two users subscribe to each other and exchange presence, with slixmpp.

usage: slix_presence.py PORT

juliet logs in twice (balcony, garden), romeo once (orchard); passwords
r0m30 and j00l13t. romeo asks juliet for a subscription; slixmpp's default
roster handling approves it and subscribes back, so the subscription ends up
mutual. Each side must see the other's resources available, then romeo's TCP
connection is dropped without a stream close and both of juliet's resources
must see romeo go unavailable. Prints milestones; exits 0 only if all seen.
"""
import asyncio
import sys

import slixmpp

PORT = int(sys.argv[1])
seen = set()


def client(jid, password, name):
    c = slixmpp.ClientXMPP(jid, password)
    c.register_plugin("xep_0030")

    async def no_dns(domain, port=None):
        return [("127.0.0.1", "127.0.0.1", PORT)]

    c.get_dns_records = no_dns

    async def start(_):
        await c.get_roster()
        c.send_presence()
        seen.add(f"{name} started")

    def available(pres):
        seen.add(f"{name} sees {pres['from']} available")

    def unavailable(pres):
        seen.add(f"{name} sees {pres['from']} unavailable")

    c.add_event_handler("session_start", start)
    c.add_event_handler("presence_available", available)
    c.add_event_handler("presence_unavailable", unavailable)
    c.connect(("127.0.0.1", PORT), use_ssl=False, force_starttls=False, disable_starttls=True)
    return c


async def wait_for(*events, timeout=10):
    for _ in range(int(timeout * 20)):
        if all(e in seen for e in events):
            return True
        await asyncio.sleep(0.05)
    print("MISSING", [e for e in events if e not in seen], "SEEN", sorted(seen), flush=True)
    return False


async def scenario():
    j1 = client("juliet@localhost/balcony", "r0m30", "balcony")
    j2 = client("juliet@localhost/garden", "r0m30", "garden")
    r = client("romeo@localhost/orchard", "j00l13t", "orchard")
    if not await wait_for("balcony started", "garden started", "orchard started"):
        return False
    r.send_presence(pto="juliet@localhost", ptype="subscribe")
    if not await wait_for(
        "orchard sees juliet@localhost/balcony available",
        "orchard sees juliet@localhost/garden available",
        "balcony sees romeo@localhost/orchard available",
        "garden sees romeo@localhost/orchard available",
    ):
        return False
    print("MUTUAL", j1.client_roster["romeo@localhost"]["subscription"],
          r.client_roster["juliet@localhost"]["subscription"], flush=True)
    # Drop romeo's TCP connection: no unavailable, no stream close.
    r.transport.abort()
    if not await wait_for(
        "balcony sees romeo@localhost/orchard unavailable",
        "garden sees romeo@localhost/orchard unavailable",
    ):
        return False
    print("UNAVAILABLE seen by both of juliet's resources", flush=True)
    j1.disconnect()
    j2.disconnect()
    return True


ok = asyncio.get_event_loop().run_until_complete(scenario())
sys.exit(0 if ok else 1)
