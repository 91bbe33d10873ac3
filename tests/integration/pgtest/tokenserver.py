"""A token server for the registry's bearer-token authentication.

The registry (distribution 2.8) accepts an RS256 JWT only when the JWT
header's kid is the libtrust key id of the key whose certificate is in its
auth.token.rootcertbundle. The server grants every requested action to
clients that present the configured user name and password.
"""

import base64
import datetime
import hashlib
import json
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import jwt
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from . import net

TOKEN_LIFETIME_SECONDS = 300


def libtrust_key_id(public_key) -> str:
    """Return the libtrust key id of public_key.

    The id is the SHA-256 of the DER SubjectPublicKeyInfo, cut to 30 bytes,
    encoded as base32 without padding, in groups of 4 joined by ':'.
    """
    der = public_key.public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    encoded = encoded.rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


def self_signed_certificate(key, common_name: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def parse_scope(scope: str) -> dict | None:
    """Parse "TYPE:NAME:ACTIONS" into a claim's access entry.

    NAME may contain ':' (a registry host with a port), so the type ends at
    the first ':' and the actions start after the last one.
    """
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if not kind or not name:
        return None
    return {"type": kind, "name": name, "actions": actions.split(",")}


@dataclass
class TokenRequest:
    """One request that reached the token server."""

    method: str
    query: dict
    username: str | None
    authenticated: bool
    via: str  # "basic", "form" or "none"


class TokenServer:
    """A token server on 127.0.0.1, run by a thread, that serves GET /token
    (Basic credentials) and POST /token (OAuth2 password grant)."""

    def __init__(
        self,
        workdir: Path,
        username: str,
        password: str,
        service: str = "pgtest-registry",
        issuer: str = "pgtest-token-issuer",
    ):
        workdir.mkdir(parents=True, exist_ok=True)
        self.username = username
        self.password = password
        self.service = service
        self.issuer = issuer
        self.requests: list[TokenRequest] = []
        self.tokens: list[str] = []
        self._lock = threading.Lock()

        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._key_pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.key_id = libtrust_key_id(self._key.public_key())
        certificate = self_signed_certificate(self._key, issuer)
        self.cert_path = workdir / "token-signer.pem"
        self.cert_path.write_bytes(
            certificate.public_bytes(serialization.Encoding.PEM)
        )

        self._server = net.LoopbackHTTPServer((net.LOOPBACK, 0), _handler(self))
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="token-server", daemon=True
        )
        self._thread.start()

    @property
    def realm(self) -> str:
        return f"http://{net.LOOPBACK}:{self.port}/token"

    def issue(self, subject: str, access: list[dict]) -> str:
        """Sign a token that grants access to subject, add it to tokens and
        return it."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + TOKEN_LIFETIME_SECONDS,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        token = jwt.encode(
            claims, self._key_pem, algorithm="RS256", headers={"kid": self.key_id}
        )
        with self._lock:
            self.tokens.append(token)
        return token

    def push_token(self, repository: str) -> str:
        """Return a token that lets a test push to and pull from repository."""
        access = [
            {"type": "repository", "name": repository, "actions": ["pull", "push"]}
        ]
        return self.issue(self.username, access)

    def record(self, request: TokenRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def _handler(server: TokenServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # noqa: A002 (base class name)
            pass

        def _send_json(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _basic_credentials(self) -> tuple[str, str] | None:
            header = self.headers.get("Authorization", "")
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "basic":
                return None
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                return None
            username, _, password = decoded.partition(":")
            return username, password

        def _answer(self, query: dict, credentials, via: str) -> None:
            username = credentials[0] if credentials else None
            authenticated = credentials == (server.username, server.password)
            server.record(
                TokenRequest(self.command, query, username, authenticated, via)
            )
            if urllib.parse.urlsplit(self.path).path != "/token":
                self._send_json(404, {"details": "not found"})
                return
            if not authenticated:
                self._send_json(401, {"details": "invalid user name or password"})
                return
            scopes = query.get("scope", [])
            scopes = [part for scope in scopes for part in scope.split(" ")]
            access = [entry for entry in map(parse_scope, scopes) if entry]
            token = server.issue(username, access)
            issued_at = datetime.datetime.now(datetime.timezone.utc)
            self._send_json(
                200,
                {
                    "token": token,
                    "access_token": token,
                    "expires_in": TOKEN_LIFETIME_SECONDS,
                    "issued_at": issued_at.isoformat().replace("+00:00", "Z"),
                },
            )

        def do_GET(self):
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            credentials = self._basic_credentials()
            self._answer(query, credentials, "basic" if credentials else "none")

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            form = urllib.parse.parse_qs(self.rfile.read(length).decode())
            credentials = None
            if form.get("grant_type") == ["password"]:
                credentials = (
                    form.get("username", [""])[0],
                    form.get("password", [""])[0],
                )
            self._answer(form, credentials, "form" if credentials else "none")

    return Handler


def parse_bearer_challenge(header: str) -> dict:
    """Parse 'Bearer realm="...",service="...",scope="..."' into a dict."""
    scheme, _, params = header.partition(" ")
    if scheme.lower() != "bearer":
        raise ValueError(f"not a bearer challenge: {header!r}")
    result = {}
    for part in params.split('",'):
        key, _, value = part.strip().partition("=")
        result[key] = value.strip('"')
    return result


def get_with_token(
    url: str, username: str, password: str, headers: dict | None = None
):
    """Send GET to url the way a registry client does. On 401, fetch a
    token from the realm in WWW-Authenticate with Basic credentials and
    send the request again with it.

    Returns (first response, token response, final response).
    """
    first = requests.get(url, headers=headers, timeout=30)
    challenge = parse_bearer_challenge(first.headers["WWW-Authenticate"])
    params = {"service": challenge["service"]}
    if "scope" in challenge:
        params["scope"] = challenge["scope"]
    token_response = requests.get(
        challenge["realm"], params=params, auth=(username, password), timeout=30
    )
    token = token_response.json()["token"]
    final = requests.get(
        url,
        headers={**(headers or {}), "Authorization": f"Bearer {token}"},
        timeout=30,
    )
    return first, token_response, final
