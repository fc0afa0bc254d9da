"""Personal eventing (XEP-0163 PEP) with slixmpp: nick and avatar.

usage: slix_pep.py PORT

juliet (balcony) and romeo (orchard) become mutual contacts. Both clients
announce +notify interest in nicks (XEP-0172) and avatar metadata
(XEP-0084) through entity caps (XEP-0115) in their first presence, so the
server learns it by asking them disco#info for their caps node. Then:

- juliet publishes a nick; romeo gets the PEP notification (NICK);
- juliet publishes an avatar, data first then metadata (with publish-options
  pubsub#access_model=open); romeo gets the metadata notification (AVATAR)
  and fetches the data item by id from juliet@localhost (AVATARDATA);
- a second romeo resource (hall) comes online with the same caps and gets
  juliet's last nick without anyone publishing again (LASTNICK);
- juliet retracts her avatar metadata item with notify='true' and romeo
  gets the retraction (RETRACT).

Nick and avatar differ in each run, so items left from an earlier run
cannot pass for this one's. Prints milestones; exits 0 only if all worked.
"""
import asyncio
import base64
import hashlib
import os
import sys

from slix_common import caps_ready, client, connect, expect, juliet_and_romeo, mutual_subscription, run

PORT = int(sys.argv[1])

PLUGINS = ("xep_0030", "xep_0004", "xep_0060", "xep_0115", "xep_0163", "xep_0172", "xep_0084")
JULIET = "juliet@localhost"
AVATAR_METADATA_NS = "urn:xmpp:avatar:metadata"

# A 1x1 PNG; a run-specific text chunk makes its sha1 (the item id) new each run.
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def png_with_text(text):
    import struct
    import zlib

    body = b"Comment\x00" + text.encode()
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    return PNG_1X1[:-12] + chunk + PNG_1X1[-12:]  # before IEND


def publish_options(c, **fields):
    """A publish-options form (XEP-0060 7.1.5), as XEP-0084 clients send."""
    form = c["xep_0004"].make_form(ftype="submit")
    form.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#publish-options")
    for var, value in fields.items():
        form.add_field(var="pubsub#" + var, value=value)
    return form


def watch(c, event):
    """A queue of (from, item id, payload) for each PEP event `event`."""
    q = asyncio.Queue()

    def on(msg):
        items = msg["pubsub_event"]["items"]
        for item in items["substanzas"]:
            q.put_nowait((str(msg["from"]), item["id"], item))

    c.add_event_handler(event, on)
    return q


async def scenario():
    tag = os.urandom(4).hex()
    nick = f"Jules-{tag}"
    avatar = png_with_text(tag)
    avatar_id = hashlib.sha1(avatar).hexdigest()

    juliet, romeo = await juliet_and_romeo(PORT, PLUGINS, prepare=caps_ready)
    nicks = watch(romeo, "user_nick_publish")
    metas = watch(romeo, "avatar_metadata_publish")
    retracts = watch(romeo, "avatar_metadata_retract")
    for c in (juliet, romeo):
        ver = await c["xep_0115"].get_verstring()
        print("CAPS", c.boundjid, ver, flush=True)

    await mutual_subscription(juliet, romeo)
    print("SUBSCRIBED both", flush=True)

    await juliet["xep_0172"].publish_nick(nick, timeout=5)
    print("PUBLISHED nick", nick, flush=True)
    def her_nick(frm, _id, item):
        return frm == JULIET and item["nick"]["nick"] == nick

    def her_avatar(frm, item_id, _item):
        return frm == JULIET and item_id == avatar_id

    _, _, item = await expect(nicks, her_nick, "nick notification")
    print("NICK", item["nick"]["nick"], flush=True)

    opts = publish_options(juliet, access_model="open")
    await juliet["xep_0084"].publish_avatar(avatar, options=opts, timeout=5)
    await juliet["xep_0084"].publish_avatar_metadata(
        {"id": avatar_id, "type": "image/png", "bytes": len(avatar), "height": "1", "width": "1"},
        options=publish_options(juliet, access_model="open"),
        timeout=5,
    )
    print("PUBLISHED avatar", avatar_id, len(avatar), flush=True)
    _, got_id, item = await expect(metas, her_avatar, "avatar metadata notification")
    infos = item["avatar_metadata"]["items"]
    print("AVATAR", got_id, infos[0]["type"], infos[0]["bytes"], flush=True)
    res = await romeo["xep_0084"].retrieve_avatar(JULIET, got_id, timeout=5)
    fetched = res["pubsub"]["items"]["substanzas"]
    data = fetched[0]["avatar_data"]["value"] if fetched else b""
    print("AVATARDATA", len(data), flush=True)

    hall = client("romeo@localhost/hall", "j00l13t", PORT, PLUGINS, prepare=caps_ready)
    hall_nicks = watch(hall, "user_nick_publish")
    connect(hall, PORT)
    await asyncio.wait_for(hall.started.wait(), 10)
    _, _, item = await expect(hall_nicks, her_nick, "last nick at login")
    print("LASTNICK", item["nick"]["nick"], flush=True)

    await juliet["xep_0060"].retract(None, AVATAR_METADATA_NS, avatar_id, notify=True, timeout=5)
    print("RETRACTED", avatar_id, flush=True)
    _, rid, _ = await expect(retracts, her_avatar, "retraction")
    print("RETRACT", rid, flush=True)

    await asyncio.wait_for(asyncio.gather(*(c.disconnect() for c in (juliet, romeo, hall))), 5)
    return data == avatar


run(scenario)
