#!/usr/bin/env python3
"""Generate X Chat interop test vectors with X's official `chatxdk` binding.

Run in a virtualenv holding chatxdk==0.5.2, cryptography and pynacl:
    python scripts/xchat_vectors.py
Writes testdata/xchat-vectors.json (docs/xchat.md describes what is in it).

What it does
  1. Builds two participants (alice = the bridge, bob = an X user) from FIXED
     private scalars, loaded into chatxdk through import_keys (the key blob).
  2. Has chatxdk (alice) create + wrap + sign a 1:1 conversation key and
     encrypt + sign a text message; plays the X backend by wrapping those
     payloads into server-side Thrift `MessageEvent`s (the `encoded_event` /
     `conversation_key_change_event` strings of chat.received / chat.sent);
     has chatxdk (bob) verify + decrypt them.
  3. Re-derives every primitive independently (pyca/cryptography + PyNaCl +
     a hand-written Thrift binary codec) to check the spec in docs/xchat.md, and
     builds a fully DETERMINISTIC message + key change (fixed ephemeral key,
     fixed nonces, fixed ids, RFC 6979 signatures) that chatxdk accepts.
  4. Media: secretstream round trips in both directions.

Only the "deterministic" section is byte-stable across runs; everything that
chatxdk itself generates (conversation key, ECIES ephemeral key, XSalsa20
nonce, secretstream header, message ids, clock-based key versions) changes
on every run. See vectors.json -> meta.nondeterminism.
"""
import base64
import hashlib
import json
import os
import struct
import sys
import uuid

import chat_xdk
from chat_xdk import Chat
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
import nacl.bindings as sodium
import nacl.secret

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata", "xchat-vectors.json")
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

# --------------------------------------------------------------------------
# helpers: base64 flavours
# --------------------------------------------------------------------------

def b64(b):  # standard, padded
    return base64.b64encode(bytes(b)).decode()

def b64np(b):  # standard, no padding
    return base64.b64encode(bytes(b)).decode().rstrip("=")

def unb64(s):  # accept padded or not
    return base64.b64decode(s + "=" * (-len(s) % 4))

# --------------------------------------------------------------------------
# Minimal Thrift TBinaryProtocol codec (written for this note; structs only)
# --------------------------------------------------------------------------
T_STOP, T_BOOL, T_BYTE, T_I16, T_I32, T_I64, T_STRING, T_STRUCT, T_MAP, T_LIST = 0, 2, 3, 6, 8, 10, 11, 12, 13, 15

def t_field(ftype, fid):
    return bytes([ftype]) + struct.pack(">h", fid)

def t_str(fid, val):
    raw = val.encode() if isinstance(val, str) else bytes(val)
    return t_field(T_STRING, fid) + struct.pack(">i", len(raw)) + raw

def t_bool(fid, val):
    return t_field(T_BOOL, fid) + (b"\x01" if val else b"\x00")

def t_i64(fid, val):
    return t_field(T_I64, fid) + struct.pack(">q", val)

def t_struct(fid, body_with_stop):
    return t_field(T_STRUCT, fid) + body_with_stop

def t_list_struct(fid, bodies):
    return t_field(T_LIST, fid) + bytes([T_STRUCT]) + struct.pack(">i", len(bodies)) + b"".join(bodies)

STOP = b"\x00"

def t_decode(buf, pos=0):
    """Decode one struct -> (dict fid -> value, new_pos). Strings stay bytes."""
    out = {}
    while True:
        ftype = buf[pos]; pos += 1
        if ftype == T_STOP:
            return out, pos
        fid = struct.unpack(">h", buf[pos:pos + 2])[0]; pos += 2
        val, pos = t_value(buf, pos, ftype)
        out[fid] = val

def t_value(buf, pos, ftype):
    if ftype == T_BOOL or ftype == T_BYTE:
        return buf[pos], pos + 1
    if ftype == T_I16:
        return struct.unpack(">h", buf[pos:pos + 2])[0], pos + 2
    if ftype == T_I32:
        return struct.unpack(">i", buf[pos:pos + 4])[0], pos + 4
    if ftype == T_I64:
        return struct.unpack(">q", buf[pos:pos + 8])[0], pos + 8
    if ftype == T_STRING:
        n = struct.unpack(">i", buf[pos:pos + 4])[0]; pos += 4
        return bytes(buf[pos:pos + n]), pos + n
    if ftype == T_STRUCT:
        return t_decode(buf, pos)
    if ftype == T_LIST:
        et = buf[pos]; n = struct.unpack(">i", buf[pos + 1:pos + 5])[0]; pos += 5
        items = []
        for _ in range(n):
            v, pos = t_value(buf, pos, et)
            items.append(v)
        return items, pos
    if ftype == T_MAP:
        kt, vt = buf[pos], buf[pos + 1]; n = struct.unpack(">i", buf[pos + 2:pos + 6])[0]; pos += 6
        m = []
        for _ in range(n):
            k, pos = t_value(buf, pos, kt); v, pos = t_value(buf, pos, vt); m.append((k, v))
        return m, pos
    raise ValueError(f"thrift type {ftype} not handled")

def t_json(v):
    """Thrift-decoded value -> JSON-friendly (bytes as utf8 if printable else hex)."""
    if isinstance(v, dict):
        return {str(k): t_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [t_json(x) for x in v]
    if isinstance(v, bytes):
        try:
            s = v.decode()
            if s.isprintable():
                return s
        except UnicodeDecodeError:
            pass
        return "hex:" + v.hex()
    return v

def t_parse_all(buf):
    d, end = t_decode(buf)
    assert end == len(buf), (end, len(buf))
    return d

# --------------------------------------------------------------------------
# Independent primitive implementations (for cross-checking the spec)
# --------------------------------------------------------------------------

def priv_from_scalar(s):
    return ec.derive_private_key(int.from_bytes(s, "big"), ec.SECP256R1())

def sec1(pub):
    return pub.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)

def spki(pub):
    return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

def ecdsa_sign_raw(priv, data):
    der = priv.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))  # RFC 6979
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")

def ecdsa_verify_raw(pub, sig, data):
    try:
        pub.verify(encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")),
                   data, ec.ECDSA(hashes.SHA256()))
        return True
    except Exception:
        return False

def x963_kdf_sha256(z, shared_info, length):
    out, counter = b"", 1
    while len(out) < length:
        out += hashlib.sha256(z + struct.pack(">I", counter) + shared_info).digest()
        counter += 1
    return out[:length]

def ecies_encrypt(recipient_pub, plaintext, eph_priv):
    eph_pub = sec1(eph_priv.public_key())
    z = eph_priv.exchange(ec.ECDH(), recipient_pub)
    kdf = x963_kdf_sha256(z, eph_pub, 32)
    ct = AESGCM(kdf[:16]).encrypt(kdf[16:32], plaintext, None)  # 16-byte nonce, no AAD
    return eph_pub + ct, {"ecdh_shared_x_hex": z.hex(), "kdf_output_hex": kdf.hex(),
                          "aes128_key_hex": kdf[:16].hex(), "gcm_iv16_hex": kdf[16:32].hex()}

def ecies_decrypt(priv, blob):
    eph = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), blob[:65])
    z = priv.exchange(ec.ECDH(), eph)
    kdf = x963_kdf_sha256(z, blob[:65], 32)
    return AESGCM(kdf[:16]).decrypt(kdf[16:32], blob[65:], None)

def secretbox_encrypt(key, nonce, pt):
    # PyNaCl SecretBox output = nonce(24) || tag(16) || ct : the X Chat layout
    return bytes(nacl.secret.SecretBox(key).encrypt(pt, nonce))

def secretbox_decrypt(key, blob):
    return nacl.secret.SecretBox(key).decrypt(blob)

def canonical_1to1(a, b):
    return f"{a}:{b}" if (len(a), a) <= (len(b), b) else f"{b}:{a}"

# --------------------------------------------------------------------------
# Thrift builders for the X Chat structs used here (field ids: thrift/*.thrift)
# --------------------------------------------------------------------------

def message_entry_holder_text(text):
    # MessageEntryHolder{1: MessageEntryContents(union){1: MessageContents{1: message_text}}}
    contents = t_str(1, text) + STOP
    union = t_struct(1, contents) + STOP
    return t_struct(1, union) + STOP

def message_create_event(contents, ckey_version, should_notify=True):
    # MessageCreateEvent{100: contents(binary), 101: conversation_key_version, 102: should_notify}
    return t_str(100, contents) + t_str(101, ckey_version) + t_bool(102, should_notify) + STOP

def message_event_signature(sig_b64np, public_key_version, signature_version="7"):
    return t_str(1, sig_b64np) + t_str(2, public_key_version) + t_str(3, signature_version) + STOP

def detail_union(variant_id, struct_with_stop):
    # MessageEventDetail union: 1 = messageCreateEvent, 3 = conversationKeyChangeEvent, ...
    return t_struct(variant_id, struct_with_stop) + STOP

def ckce_detail(ckey_version, participant_keys):
    pks = [t_str(1, p["user_id"]) + t_str(2, p["encrypted_conversation_key"]) + t_str(3, p["public_key_version"]) + STOP
           for p in participant_keys]
    body = t_str(1, ckey_version) + t_list_struct(2, pks) + t_bool(5, False) + STOP
    return detail_union(3, body)

def server_message_event(sequence_id, message_id, sender_id, conversation_id, created_at_msec,
                         detail_union_bytes, signature_struct_bytes):
    # What the X backend relays: MessageEvent{1 seq, 2 msg id, 3 sender, 4 conv id, 6 created_at,
    # 7 detail (MessageEventDetail union), 9 message_event_signature}
    return (t_str(1, sequence_id) + t_str(2, message_id) + t_str(3, sender_id) + t_str(4, conversation_id)
            + t_str(6, created_at_msec) + t_struct(7, detail_union_bytes) + t_struct(9, signature_struct_bytes) + STOP)

# --------------------------------------------------------------------------
# Participants from fixed scalars
# --------------------------------------------------------------------------

def fixed_scalar(label):
    h = hashlib.sha256(("xdm-connect xchat vector: " + label).encode()).digest()
    assert 0 < int.from_bytes(h, "big") < P256_N
    return h

def participant(name, user_id, key_version):
    id_s, sg_s = fixed_scalar(name + "/identity"), fixed_scalar(name + "/signing")
    blob = id_s + sg_s
    chat = Chat()  # no juicebox config: manual key management
    chat.import_keys(blob, key_version)
    chat.set_identity(user_id, key_version)
    id_priv, sg_priv = priv_from_scalar(id_s), priv_from_scalar(sg_s)
    id_spki, sg_spki = spki(id_priv.public_key()), spki(sg_priv.public_key())
    # binding signature (signing key over identity SPKI) - same thing generate_keypairs produces
    bind_sdk = bytes(chat.sign(id_spki))
    bind_indep = ecdsa_sign_raw(sg_priv, id_spki)
    reverse = ecdsa_sign_raw(id_priv, sg_spki)  # identity key over signing SPKI
    pub = chat.get_public_keys()
    assert unb64(pub.identity) == sec1(id_priv.public_key())
    assert unb64(pub.signing) == sec1(sg_priv.public_key())
    assert bytes(chat.export_keys()) == blob
    assert chat.verify_key_binding(b64(id_spki), b64(sg_spki), b64(bind_sdk))
    assert chat.matches_registered_key(b64(id_spki)) and chat.matches_registered_key(pub.identity)
    fp = base64.urlsafe_b64encode(hashlib.sha256(id_spki).digest()).decode().rstrip("=")
    assert chat.get_public_key_fingerprint() == fp
    rec = {
        "user_id": user_id,
        "public_key_version": key_version,
        "key_blob_b64": b64(blob),
        "key_blob_hex": blob.hex(),
        "identity_private_scalar_hex": id_s.hex(),
        "signing_private_scalar_hex": sg_s.hex(),
        "identity_public_sec1_b64": pub.identity,
        "signing_public_sec1_b64": pub.signing,
        "identity_public_spki_b64": b64(id_spki),
        "signing_public_spki_b64": b64(sg_spki),
        "spki_prefix_hex": id_spki[:26].hex(),
        "identity_public_key_signature_b64": b64(bind_sdk),
        "identity_public_key_signature_rfc6979_matches_independent": bind_sdk == bind_indep,
        "signing_public_key_signature_b64": b64(reverse),
        "public_key_fingerprint": fp,
        "registration_request": {  # POST /2/users/{id}/public_keys body (shape of generate_keypairs())
            "public_key": {
                "identity_public_key_signature": b64(bind_sdk),
                "public_key": b64(id_spki),
                "public_key_fingerprint": fp,
                "registration_method": "CustomPin",
                "signing_public_key": b64(sg_spki),
                "signing_public_key_signature": b64(reverse),
            },
            "version": key_version,
            "generate_version": True,
        },
        "signing_key_entry": {  # what decrypt_event(s) / set_signing_keys take
            "user_id": user_id,
            "public_key_version": key_version,
            "public_key": b64(sg_spki),
            "identity_public_key": b64(id_spki),
            "identity_public_key_signature": b64(bind_sdk),
        },
    }
    return chat, id_priv, sg_priv, rec

def jsonable(v):
    if isinstance(v, (bytes, bytearray)):
        return "hex:" + bytes(v).hex()
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return v

def main():
    notes = []
    A_ID, B_ID = "1111111111111111111", "2222222222222222222"   # alice < bob numerically
    A_VER, B_VER = "1765382634817", "1736723828667"
    alice, a_idk, a_sgk, a_rec = participant("alice", A_ID, A_VER)
    bob, b_idk, b_sgk, b_rec = participant("bob", B_ID, B_VER)
    signing_keys = [a_rec["signing_key_entry"], b_rec["signing_key_entry"]]

    # ---------------- registration payload shape from a fresh generate_keypairs ---------------
    fresh = Chat()
    reg = fresh.generate_keypairs()
    fresh_reg = {
        "public_key": {f: getattr(reg.public_key, f) for f in [
            "identity_public_key_signature", "public_key", "public_key_fingerprint",
            "registration_method", "signing_public_key", "signing_public_key_signature"]},
        "version": reg.version, "generate_version": reg.generate_version,
        "export_keys_len": len(fresh.export_keys()),
    }
    fk = fresh_reg["public_key"]
    assert fresh.verify_key_binding(fk["public_key"], fk["signing_public_key"], fk["identity_public_key_signature"])
    assert ecdsa_verify_raw(serialization.load_der_public_key(unb64(fk["public_key"])),
                            unb64(fk["signing_public_key_signature"]), unb64(fk["signing_public_key"]))

    # ---------------- 1:1 conversation key (chatxdk) ----------------
    pk_inputs = [
        {"user_id": A_ID, "public_key": a_rec["identity_public_spki_b64"], "key_version": A_VER},
        {"user_id": B_ID, "public_key": b_rec["identity_public_spki_b64"], "key_version": B_VER},
    ]
    prep = alice.prepare_conversation_key_change(pk_inputs)  # conversation_id derived
    conv_id = prep["conversation_id"]
    assert conv_id == canonical_1to1(A_ID, B_ID) == f"{A_ID}:{B_ID}"
    ckey = bytes(prep["conversation_key"]); ckver = prep["conversation_key_version"]
    sig = prep["action_signatures"][0]
    # independent: unwrap bob's copy and alice's copy
    wrapped = {p["user_id"]: p for p in prep["participant_keys"]}
    assert ecies_decrypt(b_idk, unb64(wrapped[B_ID]["encrypted_key"])) == ckey
    assert ecies_decrypt(a_idk, unb64(wrapped[A_ID]["encrypted_key"])) == ckey
    assert bytes(bob.decrypt_conversation_key(wrapped[B_ID]["encrypted_key"])) == ckey
    # independent: the signed string for a v6+/v7 key change
    ckce_payload = f"ConversationKeyChangeEvent,{sig['message_id']},{A_ID},{conv_id},{ckver},{b64np(ckey)}"
    assert ecdsa_verify_raw(a_sgk.public_key(), unb64(sig["signature"]), ckce_payload.encode())
    # independent: encoded_message_event_detail is a Thrift MessageEventDetail union (variant 3)
    detail_bytes = unb64(sig["encoded_message_event_detail"])
    detail = t_parse_all(detail_bytes)
    api_participant_keys = [{"user_id": p["user_id"], "encrypted_conversation_key": p["encrypted_key"],
                             "public_key_version": p["public_key_version"]} for p in prep["participant_keys"]]
    assert detail_bytes == ckce_detail(ckver, api_participant_keys), "CKCE detail layout differs from spec"
    add_keys_body = {
        "conversation_key_version": ckver,
        "conversation_participant_keys": api_participant_keys,
        "action_signatures": [{
            "message_id": sig["message_id"],
            "encoded_message_event_detail": sig["encoded_message_event_detail"],
            "message_event_signature": {"signature": sig["signature"],
                                        "public_key_version": sig["public_key_version"],
                                        "signature_version": sig["signature_version"]},
        }],
    }
    # play the backend: the key-change MessageEvent relayed to participants
    kce_event = server_message_event("2010754819116449905", sig["message_id"], A_ID, conv_id, ckver,
                                     detail_bytes, message_event_signature(sig["signature"], A_VER))
    kce_event_b64 = b64(kce_event)

    # ---------------- message (chatxdk) ----------------
    text = "Hello from the bridge! \u00e9\u00e8 \U0001F44B"
    payload = alice.encrypt_message(B_ID, text, conversation_key=ckey, conversation_key_version=ckver)
    mce_bytes = unb64(payload.encrypted_content)
    mce = t_parse_all(mce_bytes)
    contents = mce[100]
    assert mce[101].decode() == ckver and mce[102] == 1 and set(mce) == {100, 101, 102}
    inner_pt = secretbox_decrypt(ckey, contents)
    assert inner_pt == message_entry_holder_text(text), "plaintext thrift layout differs"
    msg_payload = f"MessageCreateEvent,{payload.message_id},{A_ID},{conv_id},{ckver},{b64np(contents)}"
    assert ecdsa_verify_raw(a_sgk.public_key(), unb64(payload.signature), msg_payload.encode())
    sig_struct = unb64(payload.encoded_event_signature)
    assert sig_struct == message_event_signature(payload.signature, A_VER), "MessageEventSignature layout"
    send_body = {"message_id": payload.message_id,
                 "encoded_message_create_event": payload.encrypted_content,
                 "encoded_message_event_signature": payload.encoded_event_signature}
    created = str(int(ckver) + 1000)
    msg_event = server_message_event("2080400825227100160", payload.message_id, A_ID, conv_id, created,
                                     detail_union(1, mce_bytes), sig_struct)
    msg_event_b64 = b64(msg_event)

    # ---------------- bob decrypts (chatxdk) ----------------
    res = bob.decrypt_events([kce_event_b64, msg_event_b64], signing_keys)
    assert not res.get("errors"), res.get("errors")
    got = [m["event"] for m in res["messages"]]
    assert got[1]["type"] == "Message" and got[1]["content"]["text"] == text and got[1]["verified"] is True
    assert got[0]["type"] == "KeyChange" and got[0]["verified"] is True
    keys_map = res["conversation_keys"]["keys"]
    assert bytes(keys_map[ckver]) == ckey
    single = bob.decrypt_event(msg_event_b64, {ckver: ckey}, signing_keys)
    assert single["content"]["text"] == text
    # alice can read her own sent copy (chat.sent) too
    own = alice.decrypt_event(msg_event_b64, {ckver: ckey}, signing_keys)
    assert own["content"]["text"] == text

    # negative checks (documented behaviour)
    negatives = {}
    def expect_fail(label, fn):
        try:
            fn(); negatives[label] = "ACCEPTED"
        except Exception as e:
            negatives[label] = f"rejected: {type(e).__name__}: {str(e)[:160]}"
    swapped = server_message_event("2080400825227100160", payload.message_id, A_ID, f"{B_ID}:{A_ID}", created,
                                   detail_union(1, mce_bytes), sig_struct)
    expect_fail("conversation_id as max:min in event", lambda: bob.decrypt_event(b64(swapped), {ckver: ckey}, signing_keys))
    hyphen = server_message_event("2080400825227100160", payload.message_id, A_ID, f"{A_ID}-{B_ID}", created,
                                  detail_union(1, mce_bytes), sig_struct)
    expect_fail("conversation_id hyphenated in event", lambda: bob.decrypt_event(b64(hyphen), {ckver: ckey}, signing_keys))
    expect_fail("no signing keys (reject_unverified default)", lambda: bob.decrypt_event(msg_event_b64, {ckver: ckey}, []))
    other_id = server_message_event("2080400825227100160", str(uuid.uuid4()), A_ID, conv_id, created,
                                    detail_union(1, mce_bytes), sig_struct)
    expect_fail("message_id replaced in envelope", lambda: bob.decrypt_event(b64(other_id), {ckver: ckey}, signing_keys))
    bad_bind = dict(a_rec["signing_key_entry"]); bad_bind["identity_public_key"] = b_rec["identity_public_spki_b64"]
    expect_fail("signing key entry with broken identity binding",
                lambda: bob.decrypt_event(msg_event_b64, {ckver: ckey}, [bad_bind]))
    raw_keys = [dict(e, public_key=e["public_key"]) for e in signing_keys]
    for e in raw_keys:
        e["public_key"] = b64(unb64(e["public_key"])[26:])  # raw SEC1 instead of SPKI
    try:
        r = bob.decrypt_event(msg_event_b64, {ckver: ckey}, raw_keys)
        negatives["signing key entry with raw SEC1 public_key"] = "ACCEPTED (verified=%s)" % r["verified"]
    except Exception as e:
        negatives["signing key entry with raw SEC1 public_key"] = f"rejected: {str(e)[:160]}"

    # ---------------- fully deterministic, independently built vectors ----------------
    det = {}
    d_ckey = hashlib.sha256(b"xdm-connect xchat vector: conversation key").digest()
    d_ckver = "1768236281331"
    d_eph = priv_from_scalar(fixed_scalar("ephemeral for bob"))
    d_eph_a = priv_from_scalar(fixed_scalar("ephemeral for alice"))
    d_wrap_b, d_kdf_b = ecies_encrypt(b_idk.public_key(), d_ckey, d_eph)
    d_wrap_a, _ = ecies_encrypt(a_idk.public_key(), d_ckey, d_eph_a)
    assert bytes(bob.decrypt_conversation_key(b64(d_wrap_b))) == d_ckey
    d_pks = [{"user_id": A_ID, "encrypted_conversation_key": b64(d_wrap_a), "public_key_version": A_VER},
             {"user_id": B_ID, "encrypted_conversation_key": b64(d_wrap_b), "public_key_version": B_VER}]
    d_kce_mid = "6f1c2a0e-3b7d-4c52-9a1e-8d2f4b6c0a11"
    d_kce_payload = f"ConversationKeyChangeEvent,{d_kce_mid},{A_ID},{conv_id},{d_ckver},{b64np(d_ckey)}"
    d_kce_sig = ecdsa_sign_raw(a_sgk, d_kce_payload.encode())
    d_kce_detail = ckce_detail(d_ckver, d_pks)
    d_kce_event = server_message_event("2010754819116449906", d_kce_mid, A_ID, conv_id, d_ckver,
                                       d_kce_detail, message_event_signature(b64np(d_kce_sig), A_VER))
    d_text = "deterministic hello"
    d_nonce = hashlib.sha256(b"xdm-connect xchat vector: nonce").digest()[:24]
    d_pt = message_entry_holder_text(d_text)
    d_contents = secretbox_encrypt(d_ckey, d_nonce, d_pt)
    d_mce = message_create_event(d_contents, d_ckver, True)
    d_mid = "0b5e7f3c-9a14-4d8e-b2c6-71f0e5a9d3b8"
    d_msg_payload = f"MessageCreateEvent,{d_mid},{A_ID},{conv_id},{d_ckver},{b64np(d_contents)}"
    d_sig = ecdsa_sign_raw(a_sgk, d_msg_payload.encode())
    assert bytes(alice.sign(d_msg_payload.encode())) == d_sig, "RFC6979 mismatch between chatxdk and pyca"
    d_sig_struct = message_event_signature(b64np(d_sig), A_VER)
    d_msg_event = server_message_event("2080400825227100161", d_mid, A_ID, conv_id, "1768236290000",
                                       detail_union(1, d_mce), d_sig_struct)
    d_res = bob.decrypt_events([b64(d_kce_event), b64(d_msg_event)], signing_keys)
    assert not d_res.get("errors"), d_res.get("errors")
    d_evs = [m["event"] for m in d_res["messages"]]
    assert d_evs[0]["verified"] and d_evs[1]["verified"] and d_evs[1]["content"]["text"] == d_text
    assert bytes(d_res["conversation_keys"]["keys"][d_ckver]) == d_ckey
    det = {
        "note": "Every byte here is reproducible run to run. Built with pyca/cryptography + PyNaCl + the "
                "hand-written Thrift codec in make_vectors.py (NOT with chatxdk), then accepted by chatxdk "
                "(bob.decrypt_events verified + decrypted both events). ECDSA uses RFC 6979, which is also "
                "what chatxdk (p256 crate) uses, so chatxdk.sign() gives the same bytes.",
        "conversation_id": conv_id,
        "conversation_key_hex": d_ckey.hex(),
        "conversation_key_b64_no_pad": b64np(d_ckey),
        "conversation_key_version": d_ckver,
        "ecies_for_bob": {
            "recipient_identity_public_sec1_b64": b_rec["identity_public_sec1_b64"],
            "ephemeral_private_scalar_hex": fixed_scalar("ephemeral for bob").hex(),
            "ephemeral_public_sec1_hex": sec1(d_eph.public_key()).hex(),
            **d_kdf_b,
            "wrapped_key_b64": b64(d_wrap_b),
            "wrapped_key_len": len(d_wrap_b),
        },
        "ecies_for_alice": {"ephemeral_private_scalar_hex": fixed_scalar("ephemeral for alice").hex(),
                            "wrapped_key_b64": b64(d_wrap_a)},
        "key_change": {
            "message_id": d_kce_mid,
            "signed_payload": d_kce_payload,
            "signature_b64_no_pad": b64np(d_kce_sig),
            "encoded_message_event_detail_b64": b64(d_kce_detail),
            "server_event_b64": b64(d_kce_event),
            "server_event_decoded": t_json(t_parse_all(d_kce_event)),
        },
        "message": {
            "text": d_text,
            "plaintext_thrift_hex": d_pt.hex(),
            "xsalsa20_nonce_hex": d_nonce.hex(),
            "contents_hex": d_contents.hex(),
            "contents_layout": "nonce(24) || poly1305 tag(16) || ciphertext(len(plaintext))",
            "message_id": d_mid,
            "signed_payload": d_msg_payload,
            "signature_b64_no_pad": b64np(d_sig),
            "send_message_request": {
                "message_id": d_mid,
                "encoded_message_create_event": b64(d_mce),
                "encoded_message_event_signature": b64(d_sig_struct),
            },
            "server_event_b64": b64(d_msg_event),
            "server_event_decoded": t_json(t_parse_all(d_msg_event)),
            "chatxdk_decrypted": jsonable(d_evs[1]),
        },
    }

    # ---------------- media (secretstream) ----------------
    media_pt = bytes((i * 7 + 3) % 256 for i in range(2500))  # 3 chunks: 1024+1024+452
    enc = bytes(alice.encrypt_stream(media_pt, ckey))
    assert len(enc) == chat_xdk.encrypted_stream_size(len(media_pt)) == 24 + 2500 + 3 * 17
    # independent decrypt with libsodium secretstream
    st = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(st, enc[:24], ckey)
    pos, out, tags = 24, b"", []
    while pos < len(enc):
        frame = enc[pos:pos + 1041]; pos += len(frame)
        m, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(st, frame, None)
        out += m; tags.append(tag)
    assert out == media_pt and tags[-1] == sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
    assert all(t == sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE for t in tags[:-1])
    # independent encrypt -> chatxdk decrypt
    st2 = sodium.crypto_secretstream_xchacha20poly1305_state()
    hdr = sodium.crypto_secretstream_xchacha20poly1305_init_push(st2, ckey)
    ind = hdr
    chunks = [media_pt[i:i + 1024] for i in range(0, len(media_pt), 1024)]
    for i, c in enumerate(chunks):
        tag = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL if i == len(chunks) - 1 \
            else sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
        ind += sodium.crypto_secretstream_xchacha20poly1305_push(st2, c, None, tag)
    assert bytes(bob.decrypt_stream(ind, ckey)) == media_pt
    empty = bytes(alice.encrypt_stream(b"", ckey))
    assert len(empty) == 24 and bytes(bob.decrypt_stream(empty, ckey)) == b""
    expect_fail("media stream truncated (last frame dropped)", lambda: bob.decrypt_stream(enc[:24 + 2 * 1041], ckey))
    # attachment message referencing the media
    att_payload = alice.encrypt_message(conv_id, "", conversation_key=ckey, conversation_key_version=ckver,
                                        attachments=[{"attachment_type": "media", "media_hash_key": "abc123DEF456",
                                                      "width": 640, "height": 480, "filesize_bytes": len(media_pt),
                                                      "filename": "photo.jpg"}])
    att_pt = secretbox_decrypt(ckey, t_parse_all(unb64(att_payload.encrypted_content))[100])
    att_event = server_message_event("2080400825227100170", att_payload.message_id, A_ID, conv_id, created,
                                     detail_union(1, unb64(att_payload.encrypted_content)),
                                     unb64(att_payload.encoded_event_signature))
    att_dec = bob.decrypt_event(b64(att_event), {ckver: ckey}, signing_keys)

    # generic metadata encrypt (group title etc.)
    meta_ct = alice.encrypt("Project team", ckey)
    assert secretbox_decrypt(ckey, unb64(meta_ct)) == b"Project team"
    meta_ind = b64(secretbox_encrypt(ckey, d_nonce, b"Project team"))
    assert bob.decrypt(meta_ind, ckey) == "Project team"

    # ---------------- group create signatures (structure only) ----------------
    grp = alice.prepare_group_create(pk_inputs, "g1234567890123456789", [A_ID, B_ID], [A_ID], title="Project team")
    g_ck = bytes(grp["conversation_key"]); g_ver = grp["conversation_key_version"]
    g0, g1 = grp["action_signatures"]
    g0_payload = f"ConversationKeyChangeEvent,{g0['message_id']},{A_ID},g1234567890123456789,{g_ver},{b64np(g_ck)}"
    g1_payload = f"GroupChangeEvent.GroupCreate,{g1['message_id']},{A_ID},{g_ver},{A_ID},{B_ID},null,Project team,null"
    assert ecdsa_verify_raw(a_sgk.public_key(), unb64(g0["signature"]), g0_payload.encode())
    assert ecdsa_verify_raw(a_sgk.public_key(), unb64(g1["signature"]), g1_payload.encode())
    assert g1.get("signature_payload") == g1_payload

    vectors = {
        "meta": {
            "chatxdk_version": "0.5.2 (wheel chatxdk-0.5.2-cp310-abi3-manylinux_2_17_x86_64)",
            "python": sys.version.split()[0],
            "generator": "make_vectors.py",
            "nondeterminism": [
                "chatxdk section: conversation_key, conversation_key_version (wall-clock ms), ECIES ephemeral keys, "
                "XSalsa20 nonce, secretstream header, message_id UUIDs and so every ciphertext and signature over "
                "them change on every run; the values here are one run's output, all cross-checked.",
                "participant keys, key blobs, SPKI, fingerprints and binding signatures are fixed (fixed scalars + "
                "RFC 6979 deterministic ECDSA).",
                "the 'deterministic' section is byte-stable across runs.",
                "sequence_id / created_at_msec in server events are invented by this script (the backend assigns "
                "them; they are unsigned).",
            ],
            "base64": "b64 = standard with padding; *_no_pad = standard without padding; hex: prefix = hex bytes",
        },
        "participants": {"alice": a_rec, "bob": b_rec},
        "fresh_generate_keypairs_example": fresh_reg,
        "conversation": {
            "conversation_id": conv_id,
            "conversation_key_hex": ckey.hex(),
            "conversation_key_version": ckver,
            "prepare_conversation_key_change_output": jsonable(prep),
            "signed_payload": ckce_payload,
            "encoded_message_event_detail_decoded": t_json(detail),
            "add_conversation_keys_request": add_keys_body,
            "key_change_server_event_b64": kce_event_b64,
            "key_change_server_event_decoded": t_json(t_parse_all(kce_event)),
        },
        "message": {
            "text": text,
            "plaintext_thrift_hex": inner_pt.hex(),
            "send_payload": {"message_id": payload.message_id, "encrypted_content": payload.encrypted_content,
                             "signature": payload.signature,
                             "encoded_event_signature": payload.encoded_event_signature,
                             "signature_info": {"public_key_version": payload.signature_info.public_key_version,
                                                "signature_version": payload.signature_info.signature_version},
                             "conversation_key_version": payload.conversation_key_version,
                             "should_notify": payload.should_notify},
            "message_create_event_decoded": t_json(mce),
            "contents_hex": contents.hex(),
            "signed_payload": msg_payload,
            "send_message_request": send_body,
            "server_event_b64": msg_event_b64,
            "server_event_decoded": t_json(t_parse_all(msg_event)),
            "webhook_chat_received_example": {"data": {
                "event_uuid": "8511582263942905822", "filter": {"user_id": B_ID}, "event_type": "chat.received",
                "payload": {"id": payload.message_id, "created_at_msec": created, "sender_id": A_ID,
                            "conversation_id": conv_id, "conversation_key_version": ckver,
                            "encoded_event": msg_event_b64, "conversation_key_change_event": kce_event_b64,
                            "message_event_signature": {"public_key_version": A_VER, "signature": payload.signature,
                                                        "signature_version": "7",
                                                        "signing_public_key": a_rec["signing_public_spki_b64"]}}}},
        },
        "decrypt_round_trip": {
            "decrypt_events_input": [kce_event_b64, msg_event_b64],
            "decrypt_events_result": jsonable(res),
            "decrypt_event_result": jsonable(single),
            "sender_decrypts_own_event": jsonable(own),
            "negative_checks": negatives,
        },
        "deterministic": det,
        "media": {
            "plaintext_pattern": "bytes((i*7+3) % 256 for i in range(2500))",
            "plaintext_sha256": hashlib.sha256(media_pt).hexdigest(),
            "conversation_key_hex": ckey.hex(),
            "chatxdk_encrypt_stream_b64": b64(enc),
            "layout": "header(24) || 1041-byte frames (1024 pt + 17) ... || last frame (len%1024 + 17), TAG_FINAL on last",
            "independent_libsodium_stream_b64": b64(ind),
            "attachment_message_plaintext_thrift_hex": att_pt.hex(),
            "attachment_message_plaintext_decoded": t_json(t_parse_all(att_pt)),
            "attachment_message_decrypted_by_chatxdk": jsonable(att_dec),
        },
        "metadata_encrypt": {"conversation_key_hex": ckey.hex(), "plaintext": "Project team",
                             "chatxdk_encrypt_b64": meta_ct,
                             "independent_fixed_nonce_b64": meta_ind,
                             "layout": "base64(standard, padded) of nonce(24) || tag(16) || ct"},
        "group_create": {
            "conversation_id": "g1234567890123456789",
            "conversation_key_version": g_ver,
            "action_signatures": jsonable(grp["action_signatures"]),
            "signed_payloads": [g0_payload, g1_payload],
            "group_create_detail_decoded": t_json(t_parse_all(unb64(g1["encoded_message_event_detail"]))),
        },
    }
    with open(OUT, "w") as f:
        json.dump(vectors, f, indent=2, ensure_ascii=False)
    print("wrote", OUT)
    for k, v in negatives.items():
        print(f"  {k}: {v}")

if __name__ == "__main__":
    main()
