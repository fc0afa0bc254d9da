"""Log in to Rookery with slixmpp, an independent XMPP client library.

usage: slix_login.py JID PASSWORD PORT MECHANISM [RESOURCE]

Connects to 127.0.0.1:PORT over plain TCP (or, with ROOKERY_TLS=starttls
or ROOKERY_TLS=direct, over TLS trusting the certificate in ROOKERY_CA),
authenticates with MECHANISM (ANY: slixmpp's own choice and fallbacks),
binds a resource, sends a message to its own full JID and waits for it to
come back, then closes the stream. Prints one line per milestone:
"BOUND <full jid>", "ECHO <body>", "AUTH_FAILED", and exits 0 only when
everything worked.
"""
import asyncio
import os
import sys

import slixmpp


def main():
    jid, password, port, mechanism = sys.argv[1:5]
    resource = sys.argv[5] if len(sys.argv) > 5 else None
    tls = os.environ.get("ROOKERY_TLS", "none")
    if resource:
        jid = f"{jid}/{resource}"
    # ANY: slixmpp picks and falls back by itself, as its users' clients do.
    mechanisms = {"unencrypted_plain": tls == "none"}
    if mechanism != "ANY":
        mechanisms["use_mech"] = mechanism
    client = slixmpp.ClientXMPP(
        jid,
        password,
        plugin_config={"feature_mechanisms": mechanisms},
    )
    if tls != "none":
        # Trust exactly the server's generated certificate; slixmpp checks
        # the chain and the name (localhost) with OpenSSL.
        client.ca_certs = os.environ["ROOKERY_CA"]

    def encrypted(_):
        print("TLS", flush=True)

    client.add_event_handler("ssl_cert", encrypted)
    outcome = {"ok": False}

    async def no_dns(domain, port=None):
        # slixmpp 1.8 resolves SRV records even when given an address.
        return [("127.0.0.1", "127.0.0.1", int(sys.argv[3]))]

    client.get_dns_records = no_dns

    async def session_start(_):
        print("BOUND", client.boundjid.full, flush=True)
        client.send_message(mto=client.boundjid.full, mbody="echo from slixmpp", mtype="chat")

    def message(msg):
        print("ECHO", msg["body"], flush=True)
        outcome["ok"] = True
        client.disconnect()

    def failed_auth(_):
        print("AUTH_FAILED", flush=True)
        client.disconnect()

    client.add_event_handler("session_start", session_start)
    client.add_event_handler("message", message)
    client.add_event_handler("failed_all_auth", failed_auth)
    client.add_event_handler("disconnected", lambda _: client.loop.stop())
    client.connect(
        ("127.0.0.1", int(port)),
        use_ssl=tls == "direct",
        force_starttls=tls == "starttls",
        disable_starttls=tls == "none",
    )
    client.loop.call_later(15, client.loop.stop)
    client.loop.run_forever()
    sys.exit(0 if outcome["ok"] else 1)


if __name__ == "__main__":
    main()
