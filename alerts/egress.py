"""Where alert deliveries may connect: public internet addresses only, over http(s).

The promise: a Slack, PagerDuty or webhook request ("send test" included) goes out over http or
https only, and only to an address that is globally routable. Loopback, private, link-local (the
cloud metadata addresses 169.254.169.254 and fd00:ec2::254 among them), shared, unique-local,
multicast, unspecified and reserved addresses are refused, and so are the IPv4-mapped, 6to4 and
NAT64 forms of them and every host name that resolves to any of them. The operator may allow
named hosts or networks for on-premises receivers (settings.ALERT_EGRESS_ALLOW).

The name is resolved once and the request connects to the very address that was checked, while
TLS is still verified against the name: a DNS answer that changes between check and connect
(DNS rebinding) cannot get past it. Redirects are never followed and at most READ_CAP_BYTES of
an answer is read. Every failure carries words a user may see ("connection refused", "timed
out", "address not allowed"), never exception text: errno values would make the settings page a
port scanner of the internal network.
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import re
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
READ_CAP_BYTES = 64 * 1024
NOT_ALLOWED = "address not allowed"
# Not globally reachable, yet not (or not in every Python 3.11 release) refused by its tables.
_ALSO_REFUSED = [
    ipaddress.ip_network(n)
    for n in ("192.0.0.0/24", "192.88.99.0/24", "100.64.0.0/10", "64:ff9b:1::/48", "fec0::/10")
]
_CONTROL = re.compile(r"[\x00-\x20\x7f]")  # what http.client refuses in a request line
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAME_MISMATCH = {62, 64}  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH


class EgressError(Exception):
    """A request that was refused or failed; str() is words safe to show to a user.

    `refused` means the policy said no: trying again later will not help.
    """

    def __init__(self, words: str, *, refused: bool = False) -> None:
        super().__init__(words)
        self.refused = refused


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[IPAddress, ...]


def is_public(ip: IPAddress) -> bool:
    """Globally routable, judged on the IPv4 address inside a mapped, 6to4 or NAT64 one."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or _nat64(ip)
        if embedded is not None:
            return is_public(embedded)
    special = (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_unspecified
        or ip.is_reserved
    )
    return ip.is_global and not special and not any(ip in n for n in _ALSO_REFUSED)


def _nat64(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None


def _allowed_by_operator(host: str, ip: IPAddress) -> bool:
    """ALERT_EGRESS_ALLOW: host names (exact) and networks (CIDR or single addresses)."""
    for entry in settings.ALERT_EGRESS_ALLOW:
        entry = entry.strip().lower().rstrip(".")
        try:
            network = ipaddress.ip_network(entry.strip("[]"), strict=False)
        except ValueError:
            if entry == host:
                return True
            continue
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        if ip in network or (mapped is not None and mapped in network):
            return True
    return False


def check(url: str) -> Destination:
    """Parse and resolve `url` once; raise EgressError unless every address may be reached."""
    scheme, host, port, path = _parse(url)
    addresses = _resolve(host, port)
    if not all(is_public(ip) or _allowed_by_operator(host, ip) for ip in addresses):
        raise EgressError(NOT_ALLOWED, refused=True)
    return Destination(scheme, host, port, path, addresses)


def _parse(url: str) -> tuple[str, str, int, str]:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise EgressError("not a valid URL", refused=True) from None
    if parts.scheme not in ("http", "https"):
        raise EgressError("only http(s) URLs are allowed", refused=True)
    if not parts.hostname:
        raise EgressError("the URL has no host", refused=True)
    if parts.username is not None or parts.password is not None:
        raise EgressError("a user name or password in the URL is not supported", refused=True)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if port == 0 or _CONTROL.search(path):
        raise EgressError("not a valid URL", refused=True)
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname.rstrip("."), default if port is None else port, path


def _resolve(host: str, port: int) -> tuple[IPAddress, ...]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError):
        raise EgressError("host name not found") from None
    # A scoped IPv6 address ("fe80::1%eth0") is judged without its scope.
    found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    return tuple(dict.fromkeys(found))


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST to a checked address; the HTTP status, or EgressError. 3xx is not followed."""
    destination = check(url)
    deadline = time.monotonic() + timeout
    connection = _connection(destination, timeout)
    try:
        connection.request("POST", destination.path, body=body, headers=headers)
        response = connection.getresponse()
        _drain(response, deadline)
        return response.status
    except (OSError, http.client.HTTPException) as exc:
        log.warning("alert delivery to %s failed: %r", destination.host, exc)
        raise EgressError(describe(exc)) from exc
    finally:
        connection.close()


def _drain(response: http.client.HTTPResponse, deadline: float) -> None:
    """Read at most READ_CAP_BYTES, for at most the time left: only the status matters."""
    left = READ_CAP_BYTES
    try:
        while left > 0 and time.monotonic() < deadline:
            chunk = response.read1(min(left, 16 * 1024))
            if not chunk:
                return
            left -= len(chunk)
    except (OSError, http.client.HTTPException):
        pass  # the status arrived, so the alert did: a body that stalls or breaks changes nothing


def describe(exc: BaseException) -> str:
    """Words for a network failure: what a user can act on, no errno, no address."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        if exc.verify_code in _NAME_MISMATCH:
            return "TLS certificate does not match the host name"
        return "TLS certificate not trusted"
    if isinstance(exc, ssl.SSLError):
        return "TLS handshake failed"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionError):
        return "connection closed by the receiver"
    if isinstance(exc, http.client.HTTPException):
        return "the receiver did not answer in HTTP"
    return "could not connect"


def _connection(destination: Destination, timeout: float) -> http.client.HTTPConnection:
    if destination.scheme == "https":
        return _PinnedHTTPS(destination, timeout)
    return _PinnedHTTP(destination, timeout)


def _connect(destination: Destination, timeout: float | None) -> socket.socket:
    """Connect to the checked addresses in turn, never to a fresh answer for the name."""
    error: OSError = OSError("no address")
    for ip in destination.addresses:
        try:
            return socket.create_connection((str(ip), destination.port), timeout)
        except OSError as exc:
            error = exc
    raise error


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, destination: Destination, timeout: float) -> None:
        super().__init__(destination.host, destination.port, timeout=timeout)
        self.destination = destination

    def connect(self) -> None:
        self.sock = _connect(self.destination, self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, destination: Destination, timeout: float) -> None:
        self.tls = ssl.create_default_context()
        super().__init__(destination.host, destination.port, timeout=timeout, context=self.tls)
        self.destination = destination

    def connect(self) -> None:
        sock = _connect(self.destination, self.timeout)
        # Verified against the name in the URL, although the socket went to a pinned address.
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.destination.host)
