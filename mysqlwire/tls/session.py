"""Passive TLS for one TCP connection: what was negotiated, and the plaintext.

:class:`TlsSession` is sans-I/O. The dissector feeds it the bytes of each
direction as they come (any chunking, the two directions interleaved in any
order); ``feed`` returns the decrypted application-data chunks that became
available, as ``(from_client, plaintext)`` in record order per direction.

Negotiated parameters (``version``, ``cipher``, ``sni``, ``alpn``...) come from
the clear-text hellos and are filled without keys. With a :class:`KeyLog`
holding the connection's secrets the records are decrypted: TLS 1.0-1.2
(AES-GCM, AES-CCM, ChaCha20-Poly1305, CBC with HMAC incl. encrypt-then-MAC,
RC4, NULL) and TLS 1.3 (AES-GCM, ChaCha20-Poly1305, AES-CCM; KeyUpdate).

A record that needs keys the session cannot have yet (the client's records
before the server's ServerHello was fed, the server's before the ClientHello)
waits in its direction's buffer until the other side is fed (at most
``MAX_PENDING`` bytes). Call :meth:`gap` when capture bytes were lost and
:meth:`finish` at the end of the connection: it reports truncated records and
what never became decryptable.
"""

from __future__ import annotations

import zlib

from . import suites as S
from .crypto import (
    DecryptError,
    RecordDecryptor,
    Tls13Decryptor,
    UnsupportedCipher,
    key_block_12,
    make_tls12_decryptor,
)
from .keylog import CLIENT_AP0, CLIENT_HS, MASTER_SECRET, SERVER_AP0, SERVER_HS, KeyLog

MAX_RECORD = 2**14 + 2048  # RFC 5246 6.2.3 (TLS 1.3 allows less)
#: Without a TLS 1.3 handshake secret, this many records may fail with the
#: application secret (they are the encrypted handshake) before "decrypt-failed".
MAX_TRIAL = 8
#: Records waiting for the other direction's hello are dropped (as
#: undecryptable) beyond this many buffered bytes: a one-sided capture must
#: not grow without bound.
MAX_PENDING = 8 << 20

_SIDE = {True: "client", False: "server"}

_MAX_NOTES = 64
"""Alerts and anomalies kept per session: a hostile peer can send millions."""


class _Direction:
    __slots__ = (
        "from_client",
        "buf",
        "hs",
        "ccs",
        "hellos",
        "dec",
        "phase",
        "failed",
        "nokeys",
        "trial",
        "broken",
        "inflate",
        "records",
        "skipped",
        "finished",
    )

    def __init__(self, from_client: bool):
        self.from_client = from_client
        self.buf = bytearray()
        self.hs = bytearray()  # handshake message reassembly
        self.ccs = False  # ChangeCipherSpec seen (TLS <= 1.2: records encrypted from now)
        self.hellos = 0  # ClientHello / ServerHello messages seen
        self.dec: RecordDecryptor | None = None
        self.phase = ""  # "", "hs" or "ap" (TLS 1.3), "12" (TLS <= 1.2)
        self.failed = False  # authentication failure: stop decrypting
        self.nokeys = False  # keys could not be set up: skip encrypted records
        self.trial = False  # TLS 1.3 without handshake secret: try the app secret
        self.broken = False  # not (or no longer) a TLS record stream
        self.inflate = None  # TLS DEFLATE compression (RFC 3749)
        self.records = 0
        self.skipped = 0  # encrypted records not decrypted
        self.finished = False  # Finished message seen (TLS 1.2: in the encrypted stream)


class TlsSession:
    """TLS state of one TCP connection (see module doc).

    Attributes (filled from the clear-text handshake, with or without keys):
    ``version`` ("TLS 1.2"...), ``cipher`` (IANA name), ``sni``, ``alpn``
    (negotiated; for TLS 1.3 only visible with keys), ``alpn_offered``,
    ``client_random``, ``server_random``, ``alerts`` (``(from_client, level,
    description)``), ``anomalies`` (one-line strings), ``compression``,
    ``encrypt_then_mac``, ``extended_master_secret``.
    ``status``: ``"no-keys"``, ``"keys-missing"``, ``"decrypt-failed"``, ``"ok"``
    or ``"unsupported-cipher:<name>"``; ``decrypting``: a direction currently
    decrypts.
    """

    def __init__(self, keylog: KeyLog | None = None):
        if keylog is not None and not isinstance(keylog, KeyLog):
            keylog = KeyLog.load(keylog)  # path / key-log text / bytes
        self.keylog = keylog
        self.version: str | None = None
        self.version_code: int | None = None
        self.cipher: str | None = None
        self.cipher_code: int | None = None
        self.sni: str | None = None
        self.alpn: str | None = None
        self.alpn_offered: list[str] = []
        self.client_random: bytes | None = None
        self.server_random: bytes | None = None
        self.alerts: list[tuple[bool, str, str]] = []
        self.anomalies: list[str] = []
        self.compression = 0
        self.encrypt_then_mac = False
        self.extended_master_secret = False
        self.hello_retry = False
        self.key_updates = 0  # TLS 1.3 KeyUpdate messages followed (needs keys)
        self._early_data_offered = False
        self._tls13: bool | None = None  # None until a ServerHello decides
        self._server_hellos = 0  # final (non-HRR) ServerHellos processed
        self._params: S.SuiteParams | None = None
        self._unsupported: str | None = None
        self._missing: set[str] = set()
        self._key_block: dict | None = None
        self._dirs = {True: _Direction(True), False: _Direction(False)}
        self._out: list[tuple[bool, bytes]] = []
        self._closed = False

    # ------------------------------------------------------------------ public
    def feed(self, from_client: bool, data: bytes) -> list[tuple[bool, bytes]]:
        """Add bytes of one direction; return newly decrypted application data."""
        from_client = bool(from_client)
        d = self._dirs[from_client]
        if data and not d.broken:
            d.buf += data
        self._pump()
        out, self._out = self._out, []
        return out

    def gap(self, from_client: bool, nbytes: int) -> None:
        """Bytes of one direction were lost (not captured): record boundaries
        and sequence numbers are unknown from here, that direction stops."""
        d = self._dirs[bool(from_client)]
        if not d.broken:
            self._anomaly(
                f"{_SIDE[d.from_client]}: {nbytes} bytes missing from the TLS stream; "
                "this direction is no longer followed"
            )
            d.broken = True
            d.buf.clear()

    def finish(self) -> list[tuple[bool, bytes]]:
        """End of both streams: records still waiting for the other side's
        hello are skipped, truncated records reported. Returns what is left."""
        if not self._closed:
            self._closed = True
            self._pump()
            for d in self._dirs.values():
                side = _SIDE[d.from_client]
                if d.buf and not d.broken:
                    complete = _complete_records(d.buf)
                    if complete:
                        other = "ServerHello" if d.from_client else "ClientHello"
                        self._anomaly(
                            f"{side}: {complete} record(s) never decryptable (no {other} seen)"
                        )
                        self._flush_undecryptable(d)
                    if d.buf:
                        self._anomaly(
                            f"{side}: stream ends inside a TLS record ({len(d.buf)} bytes)"
                        )
                        d.buf.clear()
        out, self._out = self._out, []
        return out

    @property
    def status(self) -> str:
        if self.keylog is None:
            return "no-keys"
        if self._unsupported:
            return f"unsupported-cipher:{self._unsupported}"
        if any(d.failed for d in self._dirs.values()):
            return "decrypt-failed"
        if self._missing or self.client_random is None or self.client_random not in self.keylog:
            return "keys-missing"
        return "ok"

    @property
    def decrypting(self) -> bool:
        return any(d.dec is not None and not d.failed for d in self._dirs.values())

    @property
    def records(self) -> dict[str, int]:
        """Records seen per direction (``client``/``server``)."""
        return {_SIDE[k]: d.records for k, d in self._dirs.items()}

    def __repr__(self) -> str:
        return (
            f"<TlsSession {self.version or '?'} {self.cipher or '?'} status={self.status}"
            f" sni={self.sni!r}>"
        )

    # ------------------------------------------------------------------ engine
    def _anomaly(self, text: str) -> None:
        if len(self.anomalies) < _MAX_NOTES and text not in self.anomalies:
            self.anomalies.append(text)

    def _pump(self) -> None:
        # (a direction holding less than a record header has nothing to do:
        # not called; a broken direction holds no bytes)
        cd = self._dirs[True]
        sd = self._dirs[False]
        process = self._process
        progress = True
        while progress:
            progress = len(cd.buf) >= 5 and process(cd)
            if len(sd.buf) >= 5 and process(sd):
                progress = True

    def _process(self, d: _Direction) -> bool:
        buf = d.buf
        pos = 0
        n = len(buf)
        progress = False
        side = _SIDE[d.from_client]
        while not d.broken and n - pos >= 5:
            ctype = buf[pos]
            major = buf[pos + 1]
            length = (buf[pos + 3] << 8) | buf[pos + 4]
            if ctype < 20 or ctype > 24 or major != 3:
                if d.records == 0 and ctype & 0x80 and n - pos >= 3 and buf[pos + 2] == 1:
                    self._anomaly(f"{side}: SSLv2-compatible ClientHello (not supported)")
                else:
                    self._anomaly(
                        f"{side}: bytes at offset +{pos} are not a TLS record "
                        f"(type 0x{ctype:02x}, version 0x{major:02x}{buf[pos + 2]:02x})"
                    )
                d.broken = True
                break
            if length > MAX_RECORD:
                self._anomaly(f"{side}: TLS record of {length} bytes exceeds 2^14+2048")
                d.broken = True
                break
            if n - pos < 5 + length:
                break
            encrypted = self._is_encrypted(d, ctype)
            if encrypted is None or (encrypted and self._need_wait(d)):
                if n - pos <= MAX_PENDING:
                    break  # wait for the other direction's hello
                other = "ServerHello" if d.from_client else "ClientHello"
                self._anomaly(
                    f"{side}: over {MAX_PENDING >> 20} MiB waiting for the {other}; skipped"
                )
                d.nokeys = True
                continue
            d.records += 1
            progress = True
            if encrypted and (d.failed or (d.dec is None and d.nokeys)):
                # a protected record that cannot be read (_encrypted_record's
                # first case, without copying the record)
                pos += 5 + length
                d.skipped += 1
                if ctype == S.CT_ALERT:
                    self._anomaly(f"{side}: encrypted alert (not readable without keys)")
                continue
            version = bytes(buf[pos + 1 : pos + 3])
            fragment = bytes(buf[pos + 5 : pos + 5 + length])
            pos += 5 + length
            if encrypted:
                self._encrypted_record(d, ctype, version, fragment)
            else:
                self._clear_record(d, ctype, fragment)
        if pos:
            del buf[:pos]
        if d.broken and buf:
            buf.clear()
        return progress

    def _is_encrypted(self, d: _Direction, ctype: int) -> bool | None:
        """Whether a record is protected; None when that depends on a
        ServerHello not fed yet."""
        if ctype == S.CT_APPLICATION_DATA:
            return True
        if ctype == S.CT_CHANGE_CIPHER_SPEC or not d.ccs:
            return False
        # after a ChangeCipherSpec: protected in TLS <= 1.2, compat CCS in 1.3
        tls13 = self._tls13
        if tls13 is None or (d.from_client and self._dirs[False].hellos < d.hellos):
            if self.keylog is None or self._closed or d.nokeys:
                return True
            return None
        return not tls13

    def _need_wait(self, d: _Direction) -> bool:
        """An encrypted record arrived; can keys be chosen now?"""
        if d.dec is not None or d.failed or d.nokeys or self.keylog is None:
            return False
        if self.client_random is None or self._tls13 is None or self._server_hellos == 0:
            return True
        return d.from_client and self._dirs[False].hellos < d.hellos

    def _flush_undecryptable(self, d: _Direction) -> None:
        d.nokeys = True
        self._process(d)

    # ------------------------------------------------------------------ keys
    def _install_keys(self, d: _Direction) -> None:
        """First protected record of a direction: set up its read state."""
        kl = self.keylog
        side = _SIDE[d.from_client]
        if kl is None or self.client_random is None:
            d.nokeys = True
            return
        p = self._params
        if p is None:
            d.nokeys = True
            if self.cipher and not self._unsupported:
                self._unsupported = self.cipher
            return
        try:
            if self._tls13:
                label = CLIENT_HS if d.from_client else SERVER_HS
                secret = kl.get(self.client_random, label)
                if secret is None:
                    ap_label = CLIENT_AP0 if d.from_client else SERVER_AP0
                    ap = kl.get(self.client_random, ap_label)
                    if ap is None:
                        self._missing.add(label)
                        if self.client_random in kl:
                            self._anomaly(f"{side}: key log lacks {label} and {ap_label}")
                        d.nokeys = True
                        return
                    self._anomaly(f"{side}: key log lacks {label}; handshake records skipped")
                    d.dec, d.phase, d.trial = Tls13Decryptor(p, ap), "ap", True
                    return
                d.dec, d.phase = Tls13Decryptor(p, secret), "hs"
            else:
                ms = kl.get(self.client_random, MASTER_SECRET)
                if ms is None:
                    self._missing.add(MASTER_SECRET)
                    if self.client_random in kl:
                        self._anomaly(f"key log lacks {MASTER_SECRET} for this TLS <= 1.2 session")
                    d.nokeys = True
                    return
                if self.server_random is None:  # pragma: no cover - guarded by _need_wait
                    d.nokeys = True
                    return
                if self._key_block is None:
                    self._key_block = key_block_12(
                        self.version_code, p, ms, self.client_random, self.server_random
                    )
                d.dec = make_tls12_decryptor(
                    p, self.version_code, self._key_block[d.from_client], self.encrypt_then_mac
                )
                d.phase = "12"
                if self.compression == 1:
                    d.inflate = zlib.decompressobj()
        except UnsupportedCipher as exc:
            self._unsupported = self.cipher
            self._anomaly(f"cipher not available in this cryptography build: {exc}")
            d.nokeys = True

    def _switch_to_app(self, d: _Direction) -> None:
        label = CLIENT_AP0 if d.from_client else SERVER_AP0
        secret = self.keylog.get(self.client_random, label) if self.keylog else None
        if secret is None:
            self._missing.add(label)
            self._anomaly(f"{_SIDE[d.from_client]}: key log lacks {label}")
            d.dec, d.nokeys = None, True
            return
        d.dec, d.phase = Tls13Decryptor(self._params, secret), "ap"

    # ------------------------------------------------------------------ records
    def _encrypted_record(self, d: _Direction, ctype: int, version: bytes, frag: bytes) -> None:
        if d.dec is None and not (d.failed or d.nokeys):
            self._install_keys(d)
        if d.dec is None or d.failed:
            d.skipped += 1
            if ctype == S.CT_ALERT:
                self._anomaly(
                    f"{_SIDE[d.from_client]}: encrypted alert (not readable without keys)"
                )
            return
        try:
            inner, pt = d.dec.decrypt(ctype, version, frag)
        except DecryptError as exc:
            if d.trial and d.skipped < MAX_TRIAL:  # TLS 1.3 handshake record, no secret
                d.skipped += 1
                return
            d.failed = True
            d.skipped += 1
            hint = ""
            if d.from_client and d.phase == "hs" and self._early_data_offered:
                hint = " (0-RTT early data is not supported)"
            self._anomaly(
                f"{_SIDE[d.from_client]}: record {d.records} failed to decrypt: {exc}{hint}"
            )
            return
        d.trial = False
        if d.inflate is not None:
            try:
                pt = d.inflate.decompress(pt)
            except zlib.error:
                self._anomaly(f"{_SIDE[d.from_client]}: TLS DEFLATE decompression failed")
                d.failed = True
                return
        if inner == S.CT_APPLICATION_DATA:
            if pt:
                self._out.append((d.from_client, pt))
        elif inner == S.CT_HANDSHAKE:
            self._handshake_bytes(d, pt, protected=True)
        elif inner == S.CT_ALERT:
            self._alerts(d, pt)
        elif inner == S.CT_CHANGE_CIPHER_SPEC:
            self._anomaly(f"{_SIDE[d.from_client]}: encrypted ChangeCipherSpec")
        else:
            self._anomaly(f"{_SIDE[d.from_client]}: inner content type {inner}")

    def _clear_record(self, d: _Direction, ctype: int, frag: bytes) -> None:
        side = _SIDE[d.from_client]
        if ctype == S.CT_HANDSHAKE:
            self._handshake_bytes(d, frag, protected=False)
        elif ctype == S.CT_CHANGE_CIPHER_SPEC:
            if frag != b"\x01":
                self._anomaly(f"{side}: malformed ChangeCipherSpec")
            if self._tls13 and d.ccs:
                self._anomaly(f"{side}: second ChangeCipherSpec")
            d.ccs = True
        elif ctype == S.CT_ALERT:
            self._alerts(d, frag)
        elif ctype == S.CT_HEARTBEAT:
            self._anomaly(f"{side}: heartbeat record")

    def _alerts(self, d: _Direction, data: bytes) -> None:
        for i in range(0, min(len(data) - 1, 2 * (_MAX_NOTES - len(self.alerts))), 2):
            self.alerts.append(
                (d.from_client, S.alert_level_name(data[i]), S.alert_name(data[i + 1]))
            )
        if len(data) % 2:
            self._anomaly(f"{_SIDE[d.from_client]}: odd-length alert record")

    # ------------------------------------------------------------------ handshake
    def _handshake_bytes(self, d: _Direction, data: bytes, protected: bool) -> None:
        d.hs += data
        hs = d.hs
        pos = 0
        while len(hs) - pos >= 4:
            mlen = int.from_bytes(hs[pos + 1 : pos + 4], "big")
            if len(hs) - pos < 4 + mlen:
                break
            mtype = hs[pos]
            body = bytes(hs[pos + 4 : pos + 4 + mlen])
            pos += 4 + mlen
            try:
                self._handshake_message(d, mtype, body, protected)
            except (IndexError, ValueError) as exc:
                self._anomaly(
                    f"{_SIDE[d.from_client]}: malformed handshake message {mtype} ({exc})"
                )
            if d.dec is not None and d.phase == "hs" and d.finished:
                # the key changes after Finished: nothing may follow in this record
                d.finished = False
                if len(hs) > pos:
                    self._anomaly(f"{_SIDE[d.from_client]}: data after Finished in the same record")
                pos = len(hs)
                self._switch_to_app(d)
        if pos:
            del hs[:pos]
        if not protected and d.ccs and hs and not self._tls13:
            self._anomaly(f"{_SIDE[d.from_client]}: handshake message spans the ChangeCipherSpec")

    def _handshake_message(self, d: _Direction, mtype: int, body: bytes, protected: bool) -> None:
        side = _SIDE[d.from_client]
        if mtype == S.HS_CLIENT_HELLO and d.from_client:
            if protected:
                self._anomaly("client: renegotiation (new ClientHello inside TLS); not followed")
                return
            d.hellos += 1
            self._client_hello(body)
        elif mtype == S.HS_SERVER_HELLO and not d.from_client and not protected:
            d.hellos += 1
            self._server_hello(body)
        elif mtype == S.HS_FINISHED:
            if protected:
                d.finished = True  # TLS 1.3: the caller switches to application keys
            else:
                self._anomaly(f"{side}: Finished in clear")
        elif mtype == S.HS_ENCRYPTED_EXTENSIONS and not d.from_client:
            for etype, edata in _extensions(body, 0):
                if etype == S.EXT_ALPN:
                    names = _alpn_list(edata)
                    self.alpn = names[0] if names else None
        elif mtype == S.HS_KEY_UPDATE and protected and self._tls13:
            if isinstance(d.dec, Tls13Decryptor) and d.phase == "ap":
                d.dec.key_update()
                self.key_updates += 1
            else:
                self._anomaly(f"{side}: KeyUpdate outside the application phase")
        elif mtype == S.HS_HELLO_REQUEST and protected and not self._tls13:
            self._anomaly("server: HelloRequest (renegotiation); not followed")

    def _client_hello(self, b: bytes) -> None:
        # legacy_version(2) random(32) session_id<0..32> cipher_suites<2..> comp<1..> ext<..>
        random = b[2:34]
        if len(random) != 32:
            raise ValueError("ClientHello too short")
        if self.client_random is not None and random != self.client_random:
            self._anomaly("client: second ClientHello with a different random")
        self.client_random = random
        pos = 34
        pos += 1 + b[pos]
        pos += 2 + int.from_bytes(b[pos : pos + 2], "big")
        pos += 1 + b[pos]
        for etype, edata in _extensions(b, pos):
            if etype == S.EXT_SERVER_NAME:
                # server_name_list<1..>: name_type(1) HostName<1..>
                p = 2
                while p + 3 <= len(edata):
                    ntype = edata[p]
                    nlen = int.from_bytes(edata[p + 1 : p + 3], "big")
                    if ntype == 0:
                        self.sni = edata[p + 3 : p + 3 + nlen].decode("ascii", "replace")
                        break
                    p += 3 + nlen
            elif etype == S.EXT_ALPN:
                self.alpn_offered = _alpn_list(edata)
            elif etype == S.EXT_EARLY_DATA:
                self._early_data_offered = True

    def _server_hello(self, b: bytes) -> None:
        legacy = int.from_bytes(b[0:2], "big")
        random = b[2:34]
        if len(random) != 32:
            raise ValueError("ServerHello too short")
        pos = 34
        pos += 1 + b[pos]
        suite = int.from_bytes(b[pos : pos + 2], "big")
        comp = b[pos + 2]
        selected = None
        alpn = None
        etm = ems = False
        for etype, edata in _extensions(b, pos + 3):
            if etype == S.EXT_SUPPORTED_VERSIONS and len(edata) >= 2:
                selected = int.from_bytes(edata[:2], "big")
            elif etype == S.EXT_ALPN:
                names = _alpn_list(edata)
                alpn = names[0] if names else None
            elif etype == S.EXT_ENCRYPT_THEN_MAC:
                etm = True
            elif etype == S.EXT_EXTENDED_MASTER_SECRET:
                ems = True
        version = selected if selected is not None else legacy
        self.version_code = version
        self.version = S.version_name(version)
        self.cipher_code = suite
        self.cipher = S.suite_name(suite)
        tls13 = version == 0x0304 or (version >> 8) == 0x7F
        self._tls13 = tls13
        if random == S.HRR_RANDOM:
            self.hello_retry = True
            self._anomaly("server: HelloRetryRequest (a second ClientHello follows)")
            return
        self._server_hellos += 1
        if self._server_hellos > 1:
            self._anomaly("server: more than one ServerHello")
        self.server_random = random
        self.compression = comp
        self.encrypt_then_mac = etm and not tls13
        self.extended_master_secret = ems
        if alpn is not None:
            self.alpn = alpn
        params = S.suite_params(self.cipher)
        if params is not None and params.tls13 != tls13:
            params = None
        if version < 0x0301 or (version >> 8) == 0x7F:
            params = None  # SSL 3.0 (own MAC/PRF) and TLS 1.3 drafts are not decrypted
            self._anomaly(f"{self.version} is not decrypted")
        if comp not in (0, 1):
            params = None
            self._anomaly(f"unknown TLS compression method {comp}")
        elif comp == 1:
            self._anomaly("TLS DEFLATE compression negotiated")
        self._params = params
        if params is None and self.keylog is not None:
            self._unsupported = self.cipher


def _extensions(b: bytes, pos: int):
    if pos + 2 > len(b):
        return
    end = min(len(b), pos + 2 + int.from_bytes(b[pos : pos + 2], "big"))
    pos += 2
    while pos + 4 <= end:
        etype = int.from_bytes(b[pos : pos + 2], "big")
        elen = int.from_bytes(b[pos + 2 : pos + 4], "big")
        yield etype, b[pos + 4 : pos + 4 + elen]
        pos += 4 + elen


def _alpn_list(edata: bytes) -> list[str]:
    names = []
    p = 2
    while p < len(edata):
        n = edata[p]
        names.append(edata[p + 1 : p + 1 + n].decode("ascii", "replace"))
        p += 1 + n
    return names


def _complete_records(buf: bytearray) -> int:
    pos = count = 0
    while len(buf) - pos >= 5:
        length = (buf[pos + 3] << 8) | buf[pos + 4]
        if len(buf) - pos < 5 + length:
            break
        pos += 5 + length
        count += 1
    return count
