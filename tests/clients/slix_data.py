"""vCards and private XML storage with slixmpp.

usage: slix_data.py PORT

juliet publishes her vCard (XEP-0054) and keeps legacy bookmarks
(XEP-0048) in private XML storage (XEP-0049), then reads both back;
romeo, who is no contact of hers, reads her vCard. Prints milestones;
exits 0 only if all worked.
"""
import sys

from slix_common import juliet_and_romeo, run
from slixmpp.plugins.xep_0048.stanza import Bookmarks

PORT = int(sys.argv[1])


PLUGINS = ("xep_0030", "xep_0049", "xep_0048", "xep_0054")


async def scenario():
    juliet, romeo = await juliet_and_romeo(PORT, PLUGINS)

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


run(scenario)
