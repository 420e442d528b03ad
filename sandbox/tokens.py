"""RS256 tokens like Microsoft Entra ID issues them: minted with the sandbox's signing key and verified again.

`TokenAuthority` is shared by the identity endpoint (which mints) and the Graph emulator (which checks bearers).
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ACCESS_TOKEN_LIFETIME_S = 3600


class InvalidTokenError(Exception):
    """A bearer or assertion that fails signature, audience, issuer or expiry checks."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified Graph access token speaks for."""

    tenant_id: str
    app_id: str
    user_id: str | None
    """Object id of the signed-in user; None for an application (client credentials) token."""
    upn: str | None
    scopes: frozenset[str]
    roles: frozenset[str]

    @property
    def is_delegated(self) -> bool:
        return self.user_id is not None


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class TokenAuthority:
    """Holds one RSA signing key; mints and verifies JWTs for an issuer base such as `https://127.0.0.1:P/{tid}`."""

    def __init__(self, tenant_id: str, issuer_base: str, key: rsa.RSAPrivateKey | None = None) -> None:
        self.tenant_id = tenant_id
        self.issuer_base = issuer_base.rstrip("/")
        self._key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = self._key.public_key().public_numbers()
        self.kid = hashlib.sha256(str(numbers.n).encode()).hexdigest()[:27]
        self._jwk = {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
            "issuer": self.issuer,
        }

    @property
    def issuer(self) -> str:
        """v2.0 issuer, as Entra writes it into tokens: `{authority}/v2.0`."""
        return f"{self.issuer_base}/v2.0"

    def jwks(self) -> dict[str, Any]:
        return {"keys": [dict(self._jwk)]}

    def mint(
        self, claims: Mapping[str, Any], lifetime_s: int = ACCESS_TOKEN_LIFETIME_S, now: float | None = None
    ) -> str:
        """Sign `claims` with iss/iat/nbf/exp/tid/uti/ver filled in (caller's values win)."""
        issued = int(now if now is not None else time.time())
        body: dict[str, Any] = {
            "iss": self.issuer,
            "iat": issued,
            "nbf": issued,
            "exp": issued + lifetime_s,
            "tid": self.tenant_id,
            "uti": uuid.uuid4().hex[:22],
            "ver": "2.0",
        }
        body.update(claims)
        return jwt.encode(body, self._key, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"})

    def verify(self, token: str, audience: str | list[str], leeway_s: int = 0) -> dict[str, Any]:
        """Decode `token`, checking signature, issuer, audience and expiry; raise InvalidTokenError on any failure."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("kid") != self.kid:
                raise InvalidTokenError("The token was not signed by a key this tenant publishes.")
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["RS256"],
                audience=audience,
                issuer=self.issuer,
                leeway=leeway_s,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidTokenError("The token is expired.") from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidTokenError("The token's audience is not accepted here.") from exc
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(f"The token is not valid: {exc}") from exc
        if claims.get("tid") != self.tenant_id:
            raise InvalidTokenError("The token belongs to another tenant.")
        return claims

    def principal(self, claims: Mapping[str, Any]) -> Principal:
        """The Graph caller described by verified access-token claims."""
        scopes = frozenset(str(claims.get("scp", "")).split()) if claims.get("scp") else frozenset()
        roles_claim = claims.get("roles") or []
        roles = frozenset(str(r) for r in roles_claim) if isinstance(roles_claim, list) else frozenset()
        delegated = bool(scopes)
        return Principal(
            tenant_id=str(claims.get("tid")),
            app_id=str(claims.get("azp") or claims.get("appid") or ""),
            user_id=str(claims["oid"]) if delegated and claims.get("oid") else None,
            upn=str(claims.get("upn")) if delegated and claims.get("upn") else None,
            scopes=scopes,
            roles=roles,
        )
