"""A team's own backend, run by ppvnet as an external API (`implementation: {kind: command}`).

Python's standard library only. ppvnet binds the API's faces itself (in the netns fabric they
live in namespaces the program could not bind in) and hands them over by socket activation, the
systemd protocol:
  LISTEN_FDS, LISTEN_PID  the listening sockets are descriptors 3 .. 3+LISTEN_FDS-1
  LISTEN_FDNAMES         their faces, ':'-separated: `public` or a private endpoint's name
  PPVNET_BINDS           the same faces as label=host:port (PPVNET_BIND: the first address);
                         run outside ppvnet (no LISTEN_FDS), the program binds these itself
  PPVNET_TLS_CERT/KEY    the run's certificate for the API's host name and addresses
  PPVNET_TENANT_ID, PPVNET_AUTHORITY, PPVNET_CLIENT_ID, PPVNET_IDENTIFIER_URI
  PPVNET_CA_BUNDLE       the run's CA, to reach Entra over TLS
A face whose public network access is disabled never reaches the program: ppvnet answers it
with App Service's 403 page, as App Service does before the app.

GET /whoami answers with what the program was given and the face the request came in on.
GET /caller validates the bearer token as an Entra-protected API must (RS256 signature with a
key from the tenant's JWKS, issuer, audience, lifetime, tenant) and answers with the caller.
"""
import base64
import hashlib
import hmac
import http.server
import json
import os
import re
import signal
import socket
import ssl
import threading
import time
import urllib.request

TENANT = os.environ["PPVNET_TENANT_ID"]
AUTHORITY = os.environ["PPVNET_AUTHORITY"].rstrip("/")
AUDIENCES = {os.environ["PPVNET_CLIENT_ID"], os.environ.get("PPVNET_IDENTIFIER_URI", "")} - {""}
# Both issuer forms Entra uses: v1 and v2 access tokens.
ISSUERS = {
    f"https://sts.windows.net/{TENANT}/",
    f"https://login.microsoftonline.com/{TENANT}/v2.0",
}
CLOCK_SKEW = 300  # seconds, ASP.NET's default
KEY_REFRESH_GAP = 300  # at most one refetch per 5 minutes for unknown key ids
# DER prefix of an RSASSA-PKCS1-v1_5 SHA-256 DigestInfo (RFC 8017 section 9.2, note 1).
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


class TokenError(Exception):
    """Why a token is refused; the text goes back in the WWW-Authenticate challenge."""

    def __str__(self):
        # Only characters RFC 6750 section 3 allows in a quoted error_description.
        return re.sub(r'[^\x20-\x7e]|["\\]', "", super().__str__())


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SigningKeys:
    """The tenant's signing keys from its OpenID discovery document, refetched when a token
    names an unknown key id (Entra rotates keys)."""

    def __init__(self):
        self.keys = {}
        self.fetched_at = None
        self.lock = threading.Lock()
        self.tls = ssl.create_default_context(cafile=os.environ["PPVNET_CA_BUNDLE"])

    def get_json(self, url):
        with urllib.request.urlopen(url, context=self.tls, timeout=10) as r:
            return json.load(r)

    def key(self, kid):
        with self.lock:
            if kid not in self.keys and (
                self.fetched_at is None or time.monotonic() - self.fetched_at > KEY_REFRESH_GAP
            ):
                self.fetched_at = time.monotonic()
                try:
                    metadata = self.get_json(
                        f"{AUTHORITY}/{TENANT}/v2.0/.well-known/openid-configuration"
                    )
                    jwks = self.get_json(metadata["jwks_uri"])
                except (OSError, ValueError, KeyError) as e:
                    print(f"external-api: cannot fetch the signing keys: {e}", flush=True)
                    raise TokenError("The signature key was not found") from e
                self.keys = {
                    k["kid"]: (int.from_bytes(b64url(k["n"]), "big"),
                               int.from_bytes(b64url(k["e"]), "big"))
                    for k in jwks.get("keys", [])
                    if k.get("kty") == "RSA" and "kid" in k and "n" in k and "e" in k
                }
            if kid not in self.keys:
                raise TokenError("The signature key was not found")
            return self.keys[kid]


KEYS = SigningKeys()


def validate(token):
    """The token's claims, or TokenError with a description safe to send back."""
    try:
        head, body, signature = token.split(".")
        header = json.loads(b64url(head))
        claims = json.loads(b64url(body))
        signature = b64url(signature)
    except ValueError as e:
        raise TokenError("The token is malformed") from e
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenError("The token is malformed")
    if header.get("alg") != "RS256":
        raise TokenError("The token's signing algorithm is not accepted")
    n, e = KEYS.key(header.get("kid"))
    size = (n.bit_length() + 7) // 8
    if len(signature) != size:
        raise TokenError("The signature is invalid")
    digest = hashlib.sha256(f"{head}.{body}".encode()).digest()
    t = SHA256_DIGEST_INFO + digest
    expected = b"\x00\x01" + b"\xff" * (size - len(t) - 3) + b"\x00" + t
    actual = pow(int.from_bytes(signature, "big"), e, n).to_bytes(size, "big")
    if not hmac.compare_digest(actual, expected):
        raise TokenError("The signature is invalid")
    if claims.get("iss") not in ISSUERS:
        raise TokenError(f"The issuer '{claims.get('iss')}' is invalid")
    if claims.get("aud") not in AUDIENCES:
        raise TokenError(f"The audience '{claims.get('aud')}' is invalid")
    now = time.time()
    exp, nbf = claims.get("exp"), claims.get("nbf", 0)
    if not isinstance(exp, (int, float)) or now > exp + CLOCK_SKEW:
        raise TokenError("The token is expired")
    if not isinstance(nbf, (int, float)) or now + CLOCK_SKEW < nbf:
        raise TokenError("The token is not yet valid")
    if claims.get("tid") != TENANT:
        raise TokenError("The token was issued for another tenant")
    return claims


class Handler(http.server.BaseHTTPRequestHandler):
    ingress = "public"

    def answer(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/whoami":
            self.answer(200, {
                "tenant": TENANT,
                "client_id": os.environ["PPVNET_CLIENT_ID"],
                "authority": AUTHORITY,
                "peer": self.client_address[0],
                "ingress": self.ingress,
            })
        elif self.path == "/caller":
            auth = self.headers.get("authorization", "")
            if not auth.lower().startswith("bearer "):
                self.answer(401, {"error": {"code": "InvalidAuthenticationToken",
                                            "message": "Access token is missing."}},
                            [("www-authenticate", "Bearer")])
                return
            try:
                claims = validate(auth[7:].strip())
            except TokenError as e:
                self.answer(401, {"error": {"code": "InvalidAuthenticationToken",
                                            "message": f"{e}."}},
                            [("www-authenticate",
                              f'Bearer error="invalid_token", error_description="{e}"')])
                return
            self.answer(200, {
                "app_id": claims.get("azp") or claims.get("appid"),
                "object_id": claims.get("oid"),
                "roles": claims.get("roles", []),
                "scopes": claims.get("scp", "").split(),
                "ingress": self.ingress,
            })
        else:
            self.answer(404, {"error": {"code": "NotFound",
                                        "message": "The requested resource does not exist."}})

    def log_message(self, *args):
        pass


class FaceServer(http.server.ThreadingHTTPServer):
    """HTTPS on one face. The TLS handshake runs in the connection's own thread, so a client
    that connects and stays silent does not hold up the face."""

    daemon_threads = True

    def __init__(self, sock, label, tls):
        handler = type("Face", (Handler,), {"ingress": label})
        super().__init__(sock.getsockname()[:2], handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.tls = tls

    def finish_request(self, request, client_address):
        try:
            request = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        with request:
            super().finish_request(request, client_address)


def inherited_faces():
    """(label, socket) for each socket ppvnet handed over, or None when not socket-activated."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return None
    count = int(os.environ.get("LISTEN_FDS", "0"))
    names = os.environ.get("LISTEN_FDNAMES", "").split(":")
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)  # not for the program's own children
    return [(names[i] if i < len(names) else f"fd{3 + i}", socket.socket(fileno=3 + i))
            for i in range(count)]


def bound_faces():
    """Outside ppvnet: bind every face of PPVNET_BINDS."""
    faces = []
    for entry in filter(None, os.environ.get("PPVNET_BINDS", "").split(",")):
        label, address = entry.split("=", 1)
        host, port = address.rsplit(":", 1)
        faces.append((label, socket.create_server((host, int(port)))))
    return faces


def main():
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(os.environ["PPVNET_TLS_CERT"], os.environ["PPVNET_TLS_KEY"])
    faces = inherited_faces()
    if faces is None:
        faces = bound_faces()
    for label, sock in faces:
        server = FaceServer(sock, label, tls)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    # Serve until ppvnet stops us (with public access disabled and no private endpoint there
    # may be no face at all: the app runs, and nothing reaches it).
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
