"""What the slixmpp scenarios share: a client for a local test server.

slixmpp 1.8 looks up DNS records even when given an address, so the
lookup is answered here with the server's loopback port.
"""
import asyncio

import slixmpp


def client(jid, password, port, plugins, prepare=None, priority=None):
    """A client with these plugins; `started` is set once it has sent its
    initial presence (with `priority`, if given). `prepare`, if given, is a
    coroutine function awaited with the client before that presence goes
    out (caps_ready, say)."""
    c = slixmpp.ClientXMPP(jid, password)
    for plugin in plugins:
        c.register_plugin(plugin)

    async def no_dns(domain, port_=None):
        return [("127.0.0.1", "127.0.0.1", port)]

    c.get_dns_records = no_dns
    c.started = asyncio.Event()
    presence = {} if priority is None else {"ppriority": priority}

    if prepare is None:

        def start(_):
            c.send_presence(**presence)
            c.started.set()

    else:

        async def start(_):
            await prepare(c)
            c.send_presence(**presence)
            c.started.set()

    c.add_event_handler("session_start", start)
    return c


async def caps_ready(c):
    """Recompute c's entity caps (XEP-0115) from its disco features now, so
    that the next presence carries a ver covering every feature added so
    far, +notify interests (xep_0163 add_interest) included: the plugins
    only schedule that update, and a presence sent before it is done would
    carry an older ver."""
    await c["xep_0115"].update_caps(broadcast=False)


def connect(c, port):
    """Connect in the clear, as the test servers allow."""
    c.connect(("127.0.0.1", port), use_ssl=False, force_starttls=False, disable_starttls=True)


async def juliet_and_romeo(port, plugins, prepare=None):
    """Juliet (balcony) and Romeo (orchard), connected and available."""
    juliet = client("juliet@localhost/balcony", "r0m30", port, plugins, prepare)
    romeo = client("romeo@localhost/orchard", "j00l13t", port, plugins, prepare)
    for c in (juliet, romeo):
        connect(c, port)
    for c in (juliet, romeo):
        await asyncio.wait_for(c.started.wait(), 10)
    return juliet, romeo


async def until(condition, timeout=10, what="condition"):
    """Poll condition() every 50 ms; TimeoutError naming `what` if it does
    not hold within timeout seconds."""
    loop = asyncio.get_event_loop()
    end = loop.time() + timeout
    while not condition():
        if loop.time() > end:
            raise asyncio.TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def mutual_subscription(a, b, timeout=10):
    """Make two connected slixmpp clients mutual contacts (subscription
    'both' on each side) and wait until each has the other's presence.

    Each fetches its roster (so the server pushes roster changes to it),
    pre-approves the other (subscribed) and asks for a subscription
    (subscribe); slixmpp's default roster handling also approves incoming
    requests. Works as well when the rosters are already mutual. Then each
    sends its presence again, so that the contact's server sees it (and its
    entity caps) with the subscription in place."""
    ja, jb = a.boundjid.bare, b.boundjid.bare
    await asyncio.gather(a.get_roster(timeout=timeout), b.get_roster(timeout=timeout))
    for me, other in ((a, jb), (b, ja)):
        me.send_presence(pto=other, ptype="subscribed")
        me.send_presence(pto=other, ptype="subscribe")

    def both(me, other):
        return me.client_roster.has_jid(other) and me.client_roster[other]["subscription"] == "both"

    await until(lambda: both(a, jb) and both(b, ja), timeout, "mutual subscription")
    a.send_presence()
    b.send_presence()

    def sees(me, other):
        return bool(me.client_roster[other].resources)

    await until(lambda: sees(a, jb) and sees(b, ja), timeout, "each other's presence")


def run(scenario):
    """Run the scenario; exit 0 only if it returned true."""
    import sys

    try:
        ok = asyncio.get_event_loop().run_until_complete(scenario())
    except Exception as e:  # a timeout or protocol failure is a test failure
        print("FAILED", repr(e), flush=True)
        ok = False
    sys.exit(0 if ok else 1)


async def expect(q, match, what, timeout=10):
    """The first event queued on q (a tuple) that match(*event) accepts;
    earlier ones (last items left from an older run) are skipped."""
    loop = asyncio.get_event_loop()
    end = loop.time() + timeout
    while True:
        left = end - loop.time()
        if left <= 0:
            raise asyncio.TimeoutError(f"timed out waiting for {what}")
        got = await asyncio.wait_for(q.get(), left)
        if match(*got):
            return got
        print("SKIPPED", what, *got, flush=True)
