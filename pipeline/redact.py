"""Credentials removed from text before it is stored, logged or shown.

A source is often named by a URL that carries a secret: a user and password
(``https://user:pw@host/...``, ``s3://KEY:SECRET@bucket/...``) or a token in the query
(``?token=...``, ``X-Amz-Signature=...``, a SAS ``sig=...``). :func:`redact` replaces each
secret by ``***`` wherever it appears in a text, so a store's ``source``/``history``
attributes, a log line or an error message can quote the URL without the secret.
"""

from __future__ import annotations

import re

__all__ = ["MASK", "redact"]

#: What a secret is replaced by.
MASK = "***"

#: ``scheme://userinfo@``: everything between ``//`` and the last ``@`` before the host's
#: end (no ``/``, ``?``, ``#`` or white space in between) is user and password.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/?#@\s'\"]+)@")

#: Query or fragment parameters whose value is a secret (case-insensitive). ``X-Amz-*`` and
#: ``X-Goog-*`` cover the signed-URL parameters of S3 and GCS; ``sig``/``se``-style SAS
#: tokens of Azure are covered by ``sig``.
_SECRET_KEYS = (
    r"token|access[_-]?token|id[_-]?token|refresh[_-]?token|auth|authorization|"
    r"api[_-]?key|apikey|key|access[_-]?key(?:[_-]?id)?|secret(?:[_-]?access)?(?:[_-]?key)?|"
    r"password|passwd|pwd|credential|credentials|signature|sig|sas|session[_-]?token|"
    r"awsaccesskeyid|client[_-]?secret|private[_-]?key|"
    r"x-amz-[a-z0-9\-]+|x-goog-[a-z0-9\-]+"
)
_QUERY = re.compile(
    rf"(?P<lead>[?&;#](?:{_SECRET_KEYS})=)(?P<value>[^&;#\s'\"]*)",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` with URL user/password parts and secret query values replaced by ``***``.

    >>> redact("s3://KEY:SECRET@bucket/era5.zarr")
    's3://***@bucket/era5.zarr'
    >>> redact("https://host/era5.zarr?token=abc&x=1")
    'https://host/era5.zarr?token=***&x=1'

    Only URL syntax is recognised (``scheme://`` user info, ``?``/``&`` parameters): a
    plain path or a ``synthetic:`` spec is returned unchanged.
    """
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", str(text))
    return _QUERY.sub(lambda m: f"{m['lead']}{MASK}" if m["value"] else m[0], text)
