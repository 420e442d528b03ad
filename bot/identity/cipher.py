"""Token caches at rest: AES-256-GCM sealed per user, each blob naming the key that sealed it, so keys can rotate
(old keys open, the current key seals) and a key that opens nothing is noticed before it loses every sign-in."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bot.kernel.errors import StartupRefusedError


class TokenKeyError(StartupRefusedError):
    """Stored sign-ins exist but none opens with the configured keys: starting would lose them all."""


def _derive(key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"gradebot " + purpose).derive(key)


def key_id(key: bytes) -> str:
    """A key's public fingerprint (stored beside what it sealed); it reveals nothing about the key."""
    return _derive(key, b"token key id")[:8].hex()


class TokenCipher:
    """AES-256-GCM for token caches at rest; the user key is bound in as associated data.

    Blobs are `02 | key id (8) | nonce (12) | ciphertext`, so a blob names the key that sealed it; `01 | nonce |
    ciphertext` blobs from before key ids are opened by trying each key. Old keys open blobs, only the current
    key seals them.
    """

    LEGACY = b"\x01"
    VERSION = b"\x02"

    def __init__(self, key: bytes, old_keys: Iterable[bytes] = ()) -> None:
        keys = [key, *(old for old in old_keys if old != key)]
        if any(len(each) != 32 for each in keys):
            raise ValueError("Token encryption keys must be 32 bytes.")
        self._keys = {key_id(each): AESGCM(each) for each in keys}
        self.key_id = key_id(key)
        self.link_key = _derive(key, b"sign-in link")
        """A secret derived from the current key for signing sign-in links and codes (never the key itself)."""

    def knows(self, sealed_by: str) -> bool:
        return sealed_by in self._keys

    def seal(self, plaintext: bytes, user_key: str) -> bytes:
        nonce = os.urandom(12)
        sealed = self._keys[self.key_id].encrypt(nonce, plaintext, user_key.encode())
        return self.VERSION + bytes.fromhex(self.key_id) + nonce + sealed

    def unseal(self, blob: bytes, user_key: str) -> tuple[bytes, str] | None:
        """(plaintext, id of the key that opened it), or None when the blob is damaged, from another user or
        sealed with a key this cipher does not have."""
        if blob[:1] == self.VERSION and len(blob) >= 37:
            candidates = [(sealed_by, aead) for sealed_by, aead in self._keys.items() if sealed_by == blob[1:9].hex()]
            nonce, body = blob[9:21], blob[21:]
        elif blob[:1] == self.LEGACY and len(blob) >= 29:
            candidates = list(self._keys.items())
            nonce, body = blob[1:13], blob[13:]
        else:
            return None
        for sealed_by, each in candidates:
            with contextlib.suppress(InvalidTag):  # another key's, another user's or damaged: try the next key
                return each.decrypt(nonce, body, user_key.encode()), sealed_by
        return None

    def open(self, blob: bytes, user_key: str) -> bytes | None:
        """The plaintext, or None when the blob is damaged, from another user or sealed with an unknown key."""
        opened = self.unseal(blob, user_key)
        return None if opened is None else opened[0]
