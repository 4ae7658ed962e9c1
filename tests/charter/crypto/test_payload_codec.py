"""The payload codec on its own: round trip, fail-closed decoding, rotation, failures."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.exceptions import ApplicationError

from charter.crypto import DecryptionFailed, KeyVersionUnavailable, aead
from charter.crypto import codec as codec_module
from charter.crypto.codec import CIPHER, ENCODING, FORMAT, KEY_ID, EncryptionCodec, PayloadKeyring
from charter.temporal.plugin import data_converter
from schemas import Decision

SENTINEL = "sentinel-payload-7f3a9c"


def plain(text: str = SENTINEL) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())


async def test_round_trip_names_the_key() -> None:
    codec = EncryptionCodec(PayloadKeyring.generate("k1"))
    [enc] = await codec.encode([plain()])
    assert enc.metadata["encoding"] == ENCODING and enc.metadata[KEY_ID] == b"k1"
    assert SENTINEL.encode() not in enc.SerializeToString()
    assert await codec.decode([enc]) == [plain()]


@pytest.mark.parametrize("where", ["nonce", "ciphertext", "tag"])
async def test_tampered_payload_fails_closed(where: str) -> None:
    codec = EncryptionCodec(PayloadKeyring.generate())
    [enc] = await codec.encode([plain()])
    data = bytearray(enc.data)
    index = {"nonce": 0, "ciphertext": 14, "tag": len(data) - 1}[where]
    data[index] ^= 0x01
    tampered = Payload(metadata=dict(enc.metadata), data=bytes(data))
    with pytest.raises(DecryptionFailed):
        await codec.decode([tampered])


async def test_unencrypted_or_relabelled_payloads_never_pass_through() -> None:
    keyring = PayloadKeyring("k1", {"k1": bytes(32), "k2": bytes(range(32))})
    codec = EncryptionCodec(keyring)
    with pytest.raises(DecryptionFailed, match="unencrypted"):
        await codec.decode([plain()])
    [enc] = await codec.encode([plain()])
    relabelled = Payload(metadata={**enc.metadata, KEY_ID: b"k2"}, data=enc.data)
    with pytest.raises(DecryptionFailed):
        await codec.decode([relabelled])
    unknown = Payload(metadata={**enc.metadata, KEY_ID: b"k9"}, data=enc.data)
    with pytest.raises(KeyVersionUnavailable):
        await codec.decode([unknown])
    with pytest.raises(DecryptionFailed, match="truncated"):
        await codec.decode([Payload(metadata=dict(enc.metadata), data=b"short")])


async def test_rotation_old_payloads_still_decode_retired_fail() -> None:
    k1, k2 = bytes(range(32)), bytes(range(1, 33))
    before = EncryptionCodec(PayloadKeyring("k1", {"k1": k1}))
    [old] = await before.encode([plain("old")])
    after = EncryptionCodec(PayloadKeyring("k2", {"k1": k1, "k2": k2}))
    [new] = await after.encode([plain("new")])
    assert new.metadata[KEY_ID] == b"k2"
    assert await after.decode([old, new]) == [plain("old"), plain("new")]
    retired = EncryptionCodec(PayloadKeyring("k2", {"k2": k2}))
    with pytest.raises(KeyVersionUnavailable):
        await retired.decode([old])


async def test_keyring_reloads_for_a_key_written_by_another_process() -> None:
    source = {"current": "k1", "keys": {"k1": bytes(32)}}
    keyring = PayloadKeyring(
        "k1", dict(source["keys"]), load=lambda: (source["current"], source["keys"])
    )  # type: ignore[arg-type,return-value]
    other = PayloadKeyring("k2", {"k2": bytes(range(32))})
    [enc] = await EncryptionCodec(other).encode([plain()])
    source["keys"] = {"k1": bytes(32), "k2": bytes(range(32))}
    assert await EncryptionCodec(keyring).decode([enc]) == [plain()]


async def test_converter_keeps_pydantic_and_encodes_failure_messages() -> None:
    converter = data_converter(PayloadKeyring.generate())
    decision = Decision(proposal_id="p1", approver="maya", outcome="approve", reason=SENTINEL)
    [payload] = await converter.encode([decision])
    assert payload.metadata["encoding"] == ENCODING and SENTINEL.encode() not in payload.data
    [back] = await converter.decode([payload], [Decision])
    assert back == decision
    failure = Failure()
    try:
        raise ApplicationError(f"connector said {SENTINEL}", type="Boom")
    except ApplicationError as err:
        await converter.encode_failure(err, failure)
    assert failure.message == "Encoded failure"
    assert SENTINEL.encode() not in failure.SerializeToString()
    decoded = await converter.decode_failure(failure)
    assert SENTINEL in str(decoded)


def test_nonces_are_never_reused_even_across_a_fork() -> None:
    """Nonces are drawn from the OS in batches: each is handed out once, and a forked child
    does not go on with the batch its parent drew (same key, same nonce breaks AES-GCM)."""
    codec = EncryptionCodec(PayloadKeyring.generate())
    payload = Payload(data=b"x")
    seen = {codec.encrypt(payload).data[: aead.NONCE_BYTES] for _ in range(2000)}
    assert len(seen) == 2000  # several batches' worth, none repeated
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child takes its next nonce exactly as `encrypt` would, then leaves
        os.write(write, codec_module._NONCES.take())
        os._exit(0)
    os.close(write)
    child = os.read(read, aead.NONCE_BYTES)
    os.waitpid(pid, 0)
    parent = codec.encrypt(payload).data[: aead.NONCE_BYTES]
    assert len(child) == aead.NONCE_BYTES
    assert child != parent and child not in seen


def sealed_as_format_1(key: bytes, key_id: str, payload: Payload) -> Payload:
    """Format 1 written out from its definition, as every history before format 2 holds it."""
    nonce = os.urandom(aead.NONCE_BYTES)
    aad = b"charter/payload/1|" + key_id.encode()
    sealed = AESGCM(key).encrypt(nonce, payload.SerializeToString(), aad)
    return Payload(
        metadata={"encoding": ENCODING, KEY_ID: key_id.encode(), CIPHER: b"AES256-GCM"},
        data=nonce + sealed,
    )


async def test_json_payloads_are_written_in_format_2_others_in_format_1() -> None:
    codec = EncryptionCodec(PayloadKeyring.generate("k1"))
    null = Payload(metadata={"encoding": b"binary/null"})
    typed = Payload(metadata={"encoding": b"json/protobuf", "messageType": b"x.Y"}, data=b"{}")
    [json_enc, null_enc, typed_enc] = await codec.encode([plain(), null, typed])
    assert json_enc.metadata[FORMAT] == b"2" and SENTINEL.encode() not in json_enc.data
    assert FORMAT not in null_enc.metadata and FORMAT not in typed_enc.metadata
    assert b"messageType" not in typed_enc.SerializeToString()  # metadata stays sealed
    assert await codec.decode([json_enc, null_enc, typed_enc]) == [plain(), null, typed]


def test_format_2_covers_every_field_a_payload_has() -> None:
    """Format 2 gives back only `encoding: json/plain` and the data: a field Payload gains
    must be looked at before a payload carrying it could be written in format 2."""
    assert {f.name for f in Payload.DESCRIPTOR.fields} == {"metadata", "data", "external_payloads"}
    with_more = plain()
    with_more.metadata["other"] = b"1"
    assert not codec_module._json_only(with_more)


async def test_format_1_payloads_still_decode() -> None:
    key = bytes(range(32))
    codec = EncryptionCodec(PayloadKeyring("k1", {"k1": key}))
    old = sealed_as_format_1(key, "k1", plain("written before format 2"))
    assert await codec.decode([old]) == [plain("written before format 2")]


@pytest.mark.parametrize("relabel", ["1 as 2", "2 as 1", "unknown"])
async def test_a_relabelled_format_fails_closed(relabel: str) -> None:
    key = bytes(range(32))
    codec = EncryptionCodec(PayloadKeyring("k1", {"k1": key}))
    [v2] = await codec.encode([plain()])
    v1 = sealed_as_format_1(key, "k1", plain())
    source, label = {"1 as 2": (v1, b"2"), "2 as 1": (v2, b"1"), "unknown": (v2, b"3")}[relabel]
    relabelled = Payload(metadata={**source.metadata, FORMAT: label}, data=source.data)
    with pytest.raises(DecryptionFailed, match=r"authentication|unsupported payload format"):
        await codec.decode([relabelled])
