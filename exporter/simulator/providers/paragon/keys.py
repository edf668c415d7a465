"""The project's signing key and its users' tokens (RS256 JWTs) and how they are checked."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# --- the signing key and user tokens ------------------------------------------------------------


def generate_signing_key() -> rsa.RSAPrivateKey:
    """A fresh 2048-bit RSA key, like the signing key of a Paragon project."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def load_signing_key(pem: str | bytes) -> rsa.RSAPrivateKey:
    """The RSA private key of a PEM text; ValueError if it is not one."""
    data = pem.encode() if isinstance(pem, str) else pem
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the signing key must be an RSA private key")
    return key


def signing_key_file(path: Path) -> rsa.RSAPrivateKey:
    """The key in `path`, which is created (readable by its owner only) if it does not exist,
    so a simulator and a `--print-config` run separately agree on it."""
    if path.exists():
        return load_signing_key(path.read_bytes())
    key = generate_signing_key()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(key_pem(key))
    return key


def key_pem(key: rsa.RSAPrivateKey) -> str:
    """The key as an unencrypted PKCS #8 PEM text."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def project_id_of(key: rsa.RSAPrivateKey) -> str:
    """A project id derived from the key, so one key file always means one project."""
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return str(uuid.uuid5(uuid.NAMESPACE_OID, hashlib.sha256(public).hexdigest()))


class Unauthorized(Exception):
    """The bearer token is not a valid user token of this project; the message says why."""


def unverified_user(token: str | None) -> str | None:
    """The `sub` a token claims, unchecked: only to aim injected faults at a user."""
    if token is None:
        return None
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    sub = claims.get("sub")
    return sub if isinstance(sub, str) else None
