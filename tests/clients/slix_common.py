"""What the slixmpp scenarios share: a client for a local test server.

slixmpp 1.8 looks up DNS records even when given an address, so the
lookup is answered here with the server's loopback port.
"""
import asyncio

import slixmpp


def client(jid, password, port, plugins):
    """A client with these plugins; `started` is set once it has sent its
    initial presence."""
    c = slixmpp.ClientXMPP(jid, password)
    for plugin in plugins:
        c.register_plugin(plugin)

    async def no_dns(domain, port_=None):
        return [("127.0.0.1", "127.0.0.1", port)]

    c.get_dns_records = no_dns
    c.started = asyncio.Event()

    def start(_):
        c.send_presence()
        c.started.set()

    c.add_event_handler("session_start", start)
    return c


def connect(c, port):
    """Connect in the clear, as the test servers allow."""
    c.connect(("127.0.0.1", port), use_ssl=False, force_starttls=False, disable_starttls=True)


async def juliet_and_romeo(port, plugins):
    """Juliet (balcony) and Romeo (orchard), connected and available."""
    juliet = client("juliet@localhost/balcony", "r0m30", port, plugins)
    romeo = client("romeo@localhost/orchard", "j00l13t", port, plugins)
    for c in (juliet, romeo):
        connect(c, port)
    for c in (juliet, romeo):
        await asyncio.wait_for(c.started.wait(), 10)
    return juliet, romeo


def run(scenario):
    """Run the scenario; exit 0 only if it returned true."""
    import sys

    try:
        ok = asyncio.get_event_loop().run_until_complete(scenario())
    except Exception as e:  # a timeout or protocol failure is a test failure
        print("FAILED", repr(e), flush=True)
        ok = False
    sys.exit(0 if ok else 1)
