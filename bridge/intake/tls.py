"""The bridge's server-side TLS context: TLS 1.2+, forward-secret AEAD ciphers, modern
key-exchange groups (the Mozilla "intermediate" profile).

Every listener that speaks TLS takes its context from `server_context`, so the rules live
here only: the SMTP listener's STARTTLS (intake/listener.py), the HTTPS door (http/server.py,
through uvicorn's `ssl_context_factory`) and the SMPP server's TLS port (smpp_server/
server.py). Python's defaults, which `ssl.create_default_context` and uvicorn would use,
also accept CBC suites (ECDHE-RSA-AES128-SHA256, ...) and the groups X448 and P-521.

Finite-field DHE (TLS 1.2 clients without ECDHE, such as older SAP crypto libraries)
uses RFC 7919's 2048-bit group, shipped as `intake/ffdhe2048.pem`, as the Mozilla
profile does: without parameters OpenSSL never picks a DHE suite of the list.

One configured certificate chain (no SNI dependence: SAP may send none). Python 3.11's
`ssl` module can set a single key-exchange group only (`set_ecdh_curve`), and its
default list includes X448 and P-521, which the Mozilla "intermediate" profile does
not; `limit_groups` sets the list through OpenSSL's `SSL_CTX_ctrl` on the context's
own `SSL_CTX`, after checking that the pointer it found really is that context
(its options must read back equal). If that is not possible, P-256 alone is used.
"""

from __future__ import annotations

import _ssl
import ctypes
import logging
import ssl

from bridge.packaged import DH_PARAMS

log = logging.getLogger("bridge.intake")

CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20"
GROUPS = "X25519:P-256:P-384"
_SSL_CTRL_SET_GROUPS_LIST = 92  # OpenSSL's ssl.h: SSL_CTX_set1_groups_list is this ctrl


def server_context(cert: str, key: str) -> ssl.SSLContext:
    """A server-side context with the certificate chain `cert` and its private key `key`
    (PEM files); `OSError`/`ssl.SSLError` when they cannot be read or do not match."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.load_dh_params(str(DH_PARAMS))  # the DHE suites of CIPHERS need a group
    if not limit_groups(context, GROUPS):
        log.info("TLS key-exchange groups: cannot set %s here; using P-256 only", GROUPS)
        context.set_ecdh_curve("prime256v1")
    context.load_cert_chain(cert, key)
    return context


def limit_groups(context: ssl.SSLContext, groups: str) -> bool:
    """Allow only `groups` (OpenSSL names, ':'-separated) for key exchange; False if impossible."""
    try:
        lib = ctypes.CDLL(_ssl.__file__)  # reaches libssl's symbols through the module
        ctrl = lib.SSL_CTX_ctrl
        get_options = lib.SSL_CTX_get_options
    except (OSError, AttributeError):
        return False
    ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_char_p]
    ctrl.restype = ctypes.c_long
    get_options.argtypes = [ctypes.c_void_p]
    get_options.restype = ctypes.c_uint64
    # PySSLContext starts with PyObject_HEAD followed by its SSL_CTX pointer.
    pointer = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
    if not pointer or get_options(pointer) != int(context.options):
        return False
    return bool(ctrl(pointer, _SSL_CTRL_SET_GROUPS_LIST, 0, groups.encode("ascii")) == 1)
