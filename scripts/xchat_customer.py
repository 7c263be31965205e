#!/usr/bin/env python3
"""An X Chat (encrypted DM) customer built on X's official SDK, chatxdk (`import chat_xdk`).

A test / demo client, not a product: the sandbox's tests (crates/sandbox/tests/it/x_chat.rs) and
the bridge's tests run it as a customer on encrypted X Chat, against the sandbox's X Chat emulator
or any API speaking docs/xchat.md. Every cryptographic step is chatxdk's own (key generation and
binding checks, conversation keys, message encryption and signatures, media streams, decryption
with signatures verified); this file only moves JSON over HTTP (urllib) and keeps a state file.

Subcommands print one JSON object on stdout; a failure exits non-zero with a message on stderr.

  init --api URL --token T --user-id U --state FILE [--blob B64 --version V]
      generate keys (or import the 64-byte blob, base64), register them
      (POST /2/users/U/public_keys) and save the state.
  send --state FILE --to PEER --text T [--media PATH --media-type image|gif|video]
                                      [--append json|multipart] [--segment-bytes N] [--new-key]
      learn the conversation key from the history (or create one: POST .../keys), upload the
      encrypted media, send the encrypted, signed message (POST .../messages).
  receive --state FILE --peer PEER [--media-dir DIR]
      decrypt the whole conversation (signatures required), media downloaded and decrypted.
  decrypt-payload --state FILE --payload JSON_FILE
      decrypt one chat.received / chat.sent payload (or its whole XAA envelope).
  typing --state FILE --peer PEER
  read --state FILE --peer PEER [--sequence-id S]     (default: the newest message)

Needs only the standard library and chatxdk==0.5.2 (scripts/requirements-test.txt).
"""
import argparse
import base64
import hashlib
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid

import chat_xdk
from chat_xdk import Chat

# DER prefix of a P-256 SubjectPublicKeyInfo: what X stores in front of the SEC1 point.
SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")
# MediaAttachment.type (docs/xchat.md §4).
MEDIA_TYPES = {"image": 1, "gif": 2, "video": 3}
SEGMENT_BYTES = 1024 * 1024


class Failure(Exception):
    """An error to report on stderr."""


# ---------------------------------------------------------------- state, session, HTTP


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def session(state):
    """A chatxdk session holding this customer's keys and identity."""
    chat = Chat()
    chat.import_keys(base64.b64decode(state["blob"]), state["version"])
    chat.set_identity(state["user_id"], state["version"])
    chat.set_reject_unverified(True)
    return chat


def call(state, method, path, body=None, query=None, raw=None, content_type=None):
    """One API call with the customer's Bearer token: the JSON answer (bytes with `raw=b""`)."""
    url = state["api"].rstrip("/") + path
    if query:
        url += "?" + urllib.parse.urlencode(query)
    headers = {"Authorization": "Bearer " + state["token"]}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    elif raw is not None and content_type:
        data, headers["Content-Type"] = raw, content_type
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            answer = resp.read()
    except urllib.error.HTTPError as e:
        raise Failure(f"{method} {path}: HTTP {e.code}: {e.read().decode(errors='replace')}") from e
    except urllib.error.URLError as e:
        raise Failure(f"{method} {path}: {e.reason}") from e
    return answer if raw == b"" else json.loads(answer or b"{}")


def canonical(a, b):
    """The 1:1 conversation id: both ids in numeric order, joined by ':'."""
    return ":".join(sorted((a, b), key=lambda i: (len(i), i)))


def jsonable(value):
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


# ---------------------------------------------------------------- keys


def registration(chat, blob, version):
    """generate_keypairs()' payload for imported keys: the signing key signs the identity SPKI;
    the identity key (loaded as the "signing" half of a swapped blob) signs the signing SPKI."""
    keys = chat.get_public_keys()
    identity = SPKI_PREFIX + base64.b64decode(keys.identity)
    signing = SPKI_PREFIX + base64.b64decode(keys.signing)
    swapped = Chat()
    swapped.import_keys(blob[32:] + blob[:32])
    return {
        "public_key": {
            "identity_public_key_signature": base64.b64encode(bytes(chat.sign(identity))).decode(),
            "public_key": base64.b64encode(identity).decode(),
            "public_key_fingerprint": chat.get_public_key_fingerprint(),
            "registration_method": "CustomPin",
            "signing_public_key": base64.b64encode(signing).decode(),
            "signing_public_key_signature": base64.b64encode(bytes(swapped.sign(signing))).decode(),
        },
        "version": version,
        "generate_version": True,
    }


def public_keys(state, chat, user_id):
    """The user's key rows whose binding verifies (chatxdk verify_key_binding), oldest first."""
    rows = call(state, "GET", f"/2/users/{user_id}/public_keys")["data"]
    trusted = [r for r in rows if chat.verify_key_binding(
        r["public_key"], r["signing_public_key"], r["identity_public_key_signature"])]
    if not trusted:
        raise Failure(f"user {user_id} has no public keys with a valid binding ({len(rows)} rows)")
    return sorted(trusted, key=lambda r: int(r["public_key_version"]))


def signing_entries(user_id, rows):
    """chatxdk SigningKeyEntry dicts (docs/xchat.md §1.5)."""
    return [{"user_id": user_id, "public_key_version": r["public_key_version"],
             "public_key": r["signing_public_key"], "identity_public_key": r["public_key"],
             "identity_public_key_signature": r["identity_public_key_signature"]} for r in rows]


def everyone(state, chat, peer):
    """(verified key rows by user, signing entries) of both participants."""
    rows = {u: public_keys(state, chat, u) for u in (state["user_id"], peer)}
    return rows, [e for u, r in rows.items() for e in signing_entries(u, r)]


# ---------------------------------------------------------------- conversation


def history(state, peer):
    """Every event (conversation order) and key change of the conversation, all pages."""
    events, key_events, token = [], [], None
    while True:
        query = {"max_results": 100}
        if token:
            query["pagination_token"] = token
        page = call(state, "GET", f"/2/chat/conversations/{peer}/events", query=query)
        events.extend(page.get("data", []))
        for k in page.get("meta", {}).get("conversation_key_events", []):
            if k not in key_events:
                key_events.append(k)
        token = page.get("meta", {}).get("next_token")
        if not token:
            return list(reversed(events)), key_events


def conversation_key(state, chat, peer, rows, signing, new_key=False):
    """(key, version) to encrypt with: the latest verified key change, or (none yet, or
    `new_key`: a rotation) a new key change."""
    _, key_events = history(state, peer)
    if key_events and not new_key:
        res = chat.decrypt_events(key_events, signing)
        if res.get("errors"):
            raise Failure(f"key changes do not verify: {res['errors']}")
        keys = res["conversation_keys"]
        latest = keys.get("latest_version")
        if latest and latest in keys["keys"]:
            return bytes(keys["keys"][latest]), latest
    newest = {u: r[-1] for u, r in rows.items()}
    prep = chat.prepare_conversation_key_change([
        {"user_id": u, "public_key": r["public_key"], "key_version": r["public_key_version"]}
        for u, r in newest.items()])
    sig = prep["action_signatures"][0]
    call(state, "POST", f"/2/chat/conversations/{peer}/keys", {
        "conversation_key_version": prep["conversation_key_version"],
        "conversation_participant_keys": [
            {"user_id": p["user_id"], "encrypted_conversation_key": p["encrypted_key"],
             "public_key_version": p["public_key_version"]} for p in prep["participant_keys"]],
        "action_signatures": [{
            "message_id": sig["message_id"],
            "encoded_message_event_detail": sig["encoded_message_event_detail"],
            "message_event_signature": {"signature": sig["signature"],
                                        "public_key_version": sig["public_key_version"],
                                        "signature_version": sig["signature_version"]}}],
    })
    return bytes(prep["conversation_key"]), prep["conversation_key_version"]


# ---------------------------------------------------------------- media


def multipart(fields, media):
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="media"; filename="blob"\r\n'
                 f"Content-Type: application/octet-stream\r\n\r\n".encode() + media + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def upload(state, conversation_id, ciphertext, mode, segment_bytes):
    """initialize / append / finalize; the media_hash_key."""
    init = call(state, "POST", "/2/chat/media/upload/initialize",
                {"conversation_id": conversation_id, "total_bytes": len(ciphertext)})["data"]
    session_id, key = init["session_id"], init["media_hash_key"]
    chunks = [ciphertext[i:i + segment_bytes] for i in range(0, len(ciphertext), segment_bytes)]
    for index, chunk in enumerate(chunks):
        fields = {"conversation_id": conversation_id, "media_hash_key": key, "segment_index": str(index)}
        path = f"/2/chat/media/upload/{session_id}/append"
        if mode == "multipart":
            data, content_type = multipart(fields, chunk)
            call(state, "POST", path, raw=data, content_type=content_type)
        else:
            call(state, "POST", path, {**fields, "media": base64.b64encode(chunk).decode()})
    call(state, "POST", f"/2/chat/media/upload/{session_id}/finalize",
         {"conversation_id": conversation_id, "media_hash_key": key, "num_parts": str(len(chunks))})
    return key


def stream(engine, data):
    return bytes(engine.push(data)) + bytes(engine.finish())


# ---------------------------------------------------------------- subcommands


def cmd_init(args):
    state = {"api": args.api, "token": args.token, "user_id": args.user_id}
    chat = Chat()
    if args.blob:
        if not args.version:
            raise Failure("--blob needs --version")
        blob = base64.b64decode(args.blob)
        chat.import_keys(blob, args.version)
        payload = registration(chat, blob, args.version)
    else:
        reg = chat.generate_keypairs()
        blob = bytes(chat.export_keys())
        payload = {"public_key": {f: getattr(reg.public_key, f) for f in (
            "identity_public_key_signature", "public_key", "public_key_fingerprint",
            "registration_method", "signing_public_key", "signing_public_key_signature")},
            "version": reg.version, "generate_version": reg.generate_version}
    answer = call(state, "POST", f"/2/users/{args.user_id}/public_keys", payload)
    version = answer["data"].get("public_key_version") or payload["version"]
    state.update(blob=base64.b64encode(blob).decode(), version=version)
    with open(args.state, "w", encoding="utf-8") as f:
        json.dump(state, f, indent=1)
    return {"user_id": args.user_id, "public_key_version": version,
            "fingerprint": payload["public_key"]["public_key_fingerprint"], "blob": state["blob"]}


def cmd_send(args):
    state = load(args.state)
    chat = session(state)
    me, peer = state["user_id"], args.to
    rows, signing = everyone(state, chat, peer)
    key, version = conversation_key(state, chat, peer, rows, signing, args.new_key)
    conversation_id = canonical(me, peer)
    attachments = []
    if args.media:
        with open(args.media, "rb") as f:
            data = f.read()
        media_hash_key = upload(state, conversation_id, stream(chat.stream_encryptor(key), data),
                                args.append, args.segment_bytes)
        width, height = chat_xdk.detect_image_dimensions(data) or (0, 0)
        attachments.append({"attachment_type": "media", "media_hash_key": media_hash_key,
                            "width": width, "height": height, "filesize_bytes": len(data),
                            "filename": os.path.basename(args.media),
                            "media_type": MEDIA_TYPES[args.media_type]})
    payload = chat.encrypt_message(conversation_id, args.text, conversation_key=key,
                                   conversation_key_version=version, attachments=attachments or None)
    sent = call(state, "POST", f"/2/chat/conversations/{peer}/messages", {
        "message_id": payload.message_id,
        "encoded_message_create_event": payload.encrypted_content,
        "encoded_message_event_signature": payload.encoded_event_signature,
    })["data"]
    # The relayed event must verify and decrypt like any other.
    event = chat.decrypt_event(sent["encoded_message_event"], {version: key}, signing)
    if event["id"] != payload.message_id or not event["verified"]:
        raise Failure(f"the relayed event is not this message: {jsonable(event)}")
    return {"message_id": payload.message_id, "sequence_id": event["sequence_id"],
            "conversation_id": event["conversation_id"], "conversation_key_version": version}


def cmd_receive(args):
    state = load(args.state)
    chat = session(state)
    _, signing = everyone(state, chat, args.peer)
    events, key_events = history(state, args.peer)
    inputs = key_events + [e["encoded_event"] for e in events]
    res = chat.decrypt_events(inputs, signing)
    keys = res.get("conversation_keys", {}).get("keys", {})
    names = [f"key_change_{i}" for i in range(len(key_events))] + [e["id"] for e in events]
    errors = {names[int(i)]: str(msg) for i, msg in res.get("errors", {}).items()}
    messages = []
    for item in res["messages"]:
        ev = item["event"]
        if ev["type"] != "Message":
            continue
        atts = []
        for att in ev.get("attachments") or []:
            atts.append(fetch_media(state, chat, ev, att, keys, args.media_dir))
        messages.append({"sequence_id": ev["sequence_id"], "message_id": ev["id"],
                         "sender_id": ev["sender_id"], "text": (ev.get("content") or {}).get("text"),
                         "verified": ev["verified"], "attachments": atts})
    messages.sort(key=lambda m: (len(m["sequence_id"]), m["sequence_id"]))
    return {"messages": messages, "errors": errors}


def fetch_media(state, chat, event, att, keys, media_dir):
    key_hash = att["media_hash_key"]
    conversation = event["conversation_id"].replace(":", "-")
    ciphertext = call(state, "GET", f"/2/chat/media/{conversation}/{key_hash}", raw=b"")
    plain = stream(chat.stream_decryptor(bytes(keys[event["key_version"]])), ciphertext)
    filename = os.path.basename(att.get("filename") or key_hash)
    path = None
    if media_dir:
        os.makedirs(media_dir, exist_ok=True)
        path = os.path.join(media_dir, f"{event['sequence_id']}-{filename}")
        with open(path, "wb") as f:
            f.write(plain)
    return {"media_hash_key": key_hash, "filename": filename, "size": len(plain),
            "sha256": hashlib.sha256(plain).hexdigest(), "path": path}


def cmd_decrypt_payload(args):
    state = load(args.state)
    chat = session(state)
    with open(args.payload, encoding="utf-8") as f:
        body = json.load(f)
    payload = body.get("data", {}).get("payload", body) if "data" in body else body
    peer = payload["sender_id"] if payload["sender_id"] != state["user_id"] else \
        next(u for u in payload["conversation_id"].split(":") if u != state["user_id"])
    _, signing = everyone(state, chat, peer)
    inputs = [e for e in (payload.get("conversation_key_change_event"), payload["encoded_event"]) if e]
    res = chat.decrypt_events(inputs, signing)
    if res.get("errors"):
        raise Failure(f"the payload does not decrypt: {res['errors']}")
    return jsonable(res["messages"][-1]["event"])


def cmd_typing(args):
    state = load(args.state)
    return call(state, "POST", f"/2/chat/conversations/{args.peer}/typing")


def cmd_read(args):
    state = load(args.state)
    seen = args.sequence_id
    if not seen:
        events, _ = history(state, args.peer)
        if not events:
            raise Failure("the conversation has no message to mark read")
        seen = events[-1]["id"]
    return call(state, "POST", f"/2/chat/conversations/{args.peer}/read",
                {"seen_until_sequence_id": seen})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("init")
    p.add_argument("--api", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--user-id", required=True)
    p.add_argument("--state", required=True)
    p.add_argument("--blob")
    p.add_argument("--version")
    p = sub.add_parser("send")
    p.add_argument("--state", required=True)
    p.add_argument("--to", required=True)
    p.add_argument("--text", required=True)
    p.add_argument("--media")
    p.add_argument("--media-type", choices=sorted(MEDIA_TYPES), default="image")
    p.add_argument("--append", choices=("json", "multipart"), default="json")
    p.add_argument("--segment-bytes", type=int, default=SEGMENT_BYTES)
    p.add_argument("--new-key", action="store_true",
                   help="make a new conversation key first (a key rotation)")
    p = sub.add_parser("receive")
    p.add_argument("--state", required=True)
    p.add_argument("--peer", required=True)
    p.add_argument("--media-dir")
    p = sub.add_parser("decrypt-payload")
    p.add_argument("--state", required=True)
    p.add_argument("--payload", required=True)
    for name in ("typing", "read"):
        p = sub.add_parser(name)
        p.add_argument("--state", required=True)
        p.add_argument("--peer", required=True)
        if name == "read":
            p.add_argument("--sequence-id")
    args = parser.parse_args()
    handler = {"init": cmd_init, "send": cmd_send, "receive": cmd_receive,
               "decrypt-payload": cmd_decrypt_payload, "typing": cmd_typing, "read": cmd_read}
    try:
        print(json.dumps(handler[args.command](args)))
    except (Failure, ValueError, KeyError, OSError) as e:
        print(f"xchat_customer {args.command}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
