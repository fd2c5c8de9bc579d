"""The mailer's client certificate: loaded into its TLS contexts once, at start.

A relay that authenticates its clients by certificate (Postfix's `smtpd_tls_req_ccert`,
SAP's inbound SMTP with client authentication) gets the certificate of `tls_cert_file`
(and `tls_key_file`), as Postfix's SMTP client shows `smtp_tls_cert_file`. Whatever
stands in the way of using it is found when the mailer starts, and said in a sentence
that names the setting and what to do: a file that cannot be read, one that holds no
certificate or no key, a key that does not belong to the certificate, a key encrypted
with a passphrase (the bridge, like Postfix, cannot type one). Its end of validity is
watched with the doors' certificates (`bridge/intake/tls.py`, `CertWatcher.watch`).
"""

from __future__ import annotations

import ssl
from pathlib import Path

from bridge.certs import PEM_CERT as _PEM_CERT
from bridge.certs import PEM_KEY as _PEM_KEY
from bridge.certs import CertInfo, cert_info
from bridge.errors import ConfigError
from bridge.notices.transport_table import ClientCert

__all__ = ["CertInfo", "cert_info", "load_client_cert"]


def load_client_cert(context: ssl.SSLContext, cert: ClientCert, where: str) -> None:
    """Put `cert` into `context` (ssl.SSLContext.load_cert_chain); a ConfigError saying
    what to fix when it cannot be used. `where`: the setting's place ("[mailer]")."""
    cert_key = f"{where} tls_cert_file {str(cert.cert_file)!r}"
    key_key = f"{where} tls_key_file {str(cert.key_file)!r}" if cert.key_file else cert_key
    cert_pem = _read(cert.cert_file, cert_key, "the client certificate")
    if not _PEM_CERT.search(cert_pem):
        raise ConfigError(
            f"{cert_key}: holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the "
            "client certificate (and its chain) in PEM form"
        )
    key_pem = cert_pem if cert.key_file is None else _read(cert.key_file, key_key, "the key")
    if not _PEM_KEY.search(key_pem):
        hint = (
            "set tls_key_file to the file of its private key, or append the key to this file"
            if cert.key_file is None
            else "give the certificate's private key in PEM form"
        )
        raise ConfigError(f"{key_key}: holds no PEM private key; {hint}")
    asked: list[bool] = []

    def no_passphrase() -> str:  # else OpenSSL would prompt on the terminal
        asked.append(True)
        return ""

    try:
        context.load_cert_chain(
            str(cert.cert_file),
            str(cert.key_file) if cert.key_file else None,
            password=no_passphrase,
        )
    except ssl.SSLError as exc:
        if asked:
            raise ConfigError(
                f"{key_key}: the private key is encrypted with a passphrase, which the bridge "
                "cannot enter; store it unencrypted (openssl pkey -in KEY -out KEY.plain), "
                "readable only by the bridge's user"
            ) from None
        if "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc):
            raise ConfigError(
                f"{key_key}: the private key does not belong to the certificate in "
                f"{str(cert.cert_file)!r} (key values mismatch); give the key the "
                "certificate was issued for"
            ) from None
        raise ConfigError(
            f"{cert_key}: the certificate and key cannot be used ({exc.reason or exc}); "
            "give a PEM certificate chain, the client certificate first, and its unencrypted "
            "private key"
        ) from None
    except OSError as exc:  # removed or made unreadable between the read and the load
        raise ConfigError(f"{cert_key}: cannot be read ({exc.strerror or exc})") from None


def _read(path: Path, key: str, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{key}: {what} cannot be read ({exc.strerror or exc}); give a PEM file the "
            "bridge's user may read"
        ) from None
