"""vCards and private XML storage with slixmpp.

usage: slix_data.py PORT

juliet publishes her vCard (XEP-0054) and keeps legacy bookmarks
(XEP-0048) in private XML storage (XEP-0049), then reads both back;
romeo, who is no contact of hers, reads her vCard. Prints milestones;
exits 0 only if all worked.
"""
import asyncio
import sys

import slixmpp
from slixmpp.plugins.xep_0048.stanza import Bookmarks

PORT = int(sys.argv[1])


def client(jid, password):
    c = slixmpp.ClientXMPP(jid, password)
    for plugin in ("xep_0030", "xep_0049", "xep_0048", "xep_0054"):
        c.register_plugin(plugin)

    async def no_dns(domain, port=None):
        return [("127.0.0.1", "127.0.0.1", PORT)]

    c.get_dns_records = no_dns
    c.started = asyncio.Event()
    c.add_event_handler("session_start", lambda _: c.started.set())
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

    card = juliet["xep_0054"].make_vcard()
    card["FN"] = "Juliet Capulet"
    card["NICKNAME"] = "jc"
    await juliet["xep_0054"].publish_vcard(card, timeout=5)
    print("VCARD published", flush=True)
    own = await juliet["xep_0054"].get_vcard("juliet@localhost", timeout=5)
    print("VCARD own", own["vcard_temp"]["FN"], flush=True)
    seen = await romeo["xep_0054"].get_vcard("juliet@localhost", timeout=5)
    print("VCARD seen", seen["vcard_temp"]["FN"], flush=True)

    bookmarks = Bookmarks()
    bookmarks.add_conference("verona@conference.localhost", "juliet", name="Verona")
    await juliet["xep_0048"].set_bookmarks(bookmarks, method="xep_0049", timeout=5)
    back = await juliet["xep_0048"].get_bookmarks(method="xep_0049", timeout=5)
    rooms = [c["jid"] for c in back["private"]["bookmarks"]["conferences"]]
    print("BOOKMARKS", ",".join(str(r) for r in rooms), flush=True)
    for c in (juliet, romeo):
        c.disconnect()
    return (
        own["vcard_temp"]["FN"] == "Juliet Capulet"
        and seen["vcard_temp"]["FN"] == "Juliet Capulet"
        and [str(r) for r in rooms] == ["verona@conference.localhost"]
    )


try:
    ok = asyncio.get_event_loop().run_until_complete(scenario())
except Exception as e:  # a timeout or protocol failure is a test failure
    print("FAILED", repr(e), flush=True)
    ok = False
sys.exit(0 if ok else 1)
