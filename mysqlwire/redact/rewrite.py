"""``redact``'s frame rewriting (L3/L4): every frame of the copy passes here.

IPv4/IPv6 (and ARP) addresses are mapped unless ``keep_ips``; the TCP payload
bytes covered by an edit found in pass 1 are replaced (by TCP sequence number,
so retransmissions are covered too) after checking that the bytes there are
the ones the edit was made for; the IPv4 header checksum and the TCP/UDP/
ICMPv6 checksums of every changed frame are recomputed (updated incrementally
when the frame was cut by the snaplen).  Nothing changes length.
"""

from __future__ import annotations

import struct
from bisect import bisect_right

from .find import DirEdits
from .policy import Placeholders, RedactOptions, RedactReport

_M32 = 0xFFFFFFFF


def _csum_add(data, start: int, end: int, s: int = 0) -> int:
    n = end - start
    if n > 0:
        chunk = bytes(data[start:end])
        if n & 1:
            chunk += b"\x00"
        s += sum(struct.unpack(f"!{len(chunk) // 2}H", chunk))
    return s


def _fold(s: int) -> int:
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def _ip_checksum(buf: bytearray, off: int, ihl: int) -> None:
    buf[off + 10 : off + 12] = b"\x00\x00"
    struct.pack_into("!H", buf, off + 10, ~_fold(_csum_add(buf, off, off + ihl)) & 0xFFFF)


def _incremental(old_sum: int, old: bytes, new: bytes) -> int:
    """RFC 1624: checksum after 16-bit-aligned bytes ``old`` became ``new``."""
    s = ~old_sum & 0xFFFF
    if len(old) & 1:
        old += b"\x00"
        new += b"\x00"
    for i in range(0, len(old), 2):
        s += (~((old[i] << 8) | old[i + 1])) & 0xFFFF
        s += (new[i] << 8) | new[i + 1]
    return ~_fold(s) & 0xFFFF


_ETH_VLANS = (0x8100, 0x88A8, 0x9100)


def _locate_l3(linktype: int, data) -> tuple[int, int] | None:
    """(offset of the network header, ethertype) for the link types dissect reads."""
    n = len(data)
    try:
        if linktype == 1:
            off, et = 14, (data[12] << 8) | data[13]
        elif linktype == 113:
            off, et = 16, (data[14] << 8) | data[15]
        elif linktype == 276:
            off, et = 20, (data[0] << 8) | data[1]
        elif linktype in (0, 108):
            af = struct.unpack_from("<I" if linktype == 0 else ">I", data, 0)[0]
            if linktype == 0 and af > 0xFFFF:
                af = struct.unpack_from(">I", data, 0)[0]
            return (4, 0x0800) if af == 2 else (4, 0x86DD) if af in (10, 24, 28, 30) else None
        elif linktype in (101, 12, 14, 228, 229):
            v = data[0] >> 4
            return (0, 0x0800) if v == 4 else (0, 0x86DD) if v == 6 else None
        else:
            return None
        while et in _ETH_VLANS and off + 4 <= n:
            et = (data[off + 2] << 8) | data[off + 3]
            off += 4
        return off, et
    except (IndexError, struct.error):
        return None


class Rewriter:
    """``frame(index, linktype, data) -> bytes`` for :func:`~mysqlwire.capture.writer.copy_rewritten`."""

    def __init__(
        self,
        opts: RedactOptions,
        names: Placeholders,
        instances: dict[tuple, list[DirEdits]],
        report: RedactReport,
    ):
        self.opts = opts
        self.names = names
        self.instances = {k: sorted(v, key=lambda e: e.first_frame) for k, v in instances.items()}
        self.report = report
        self.mismatches = 0  # edits whose bytes were not where expected

    def frame(self, index: int, linktype: int, data: bytes) -> bytes:
        loc = _locate_l3(linktype, data)
        if loc is None:
            return data
        off, et = loc
        buf = bytearray(data)
        changed = False
        if et == 0x0806:  # ARP (Ethernet/IPv4)
            if (
                not self.opts.keep_ips
                and len(buf) >= off + 28
                and buf[off + 4 : off + 6] == b"\x06\x04"
            ):
                for a in (off + 14, off + 24):
                    buf[a : a + 4] = self.names.ip(buf[a : a + 4])
                return bytes(buf)
            return data
        if et == 0x0800:
            res = self._ipv4(index, buf, off)
        elif et == 0x86DD:
            res = self._ipv6(index, buf, off)
        else:
            return data
        if res is None:
            if not self.opts.keep_ips:
                self.report.frames_unmapped += 1
            return data
        changed = res
        if changed:
            self.report.frames_changed += 1
            return bytes(buf)
        return data

    # -- network layer
    def _ipv4(self, index, buf: bytearray, off: int) -> bool | None:
        if len(buf) < off + 20 or buf[off] >> 4 != 4:
            return None
        ihl = (buf[off] & 0x0F) * 4
        total = struct.unpack_from("!H", buf, off + 2)[0]
        if ihl < 20 or len(buf) < off + ihl:
            return None
        frag = struct.unpack_from("!H", buf, off + 6)[0]
        proto = buf[off + 9]
        old_src, old_dst = bytes(buf[off + 12 : off + 16]), bytes(buf[off + 16 : off + 20])
        changed = False
        if not self.opts.keep_ips:
            buf[off + 12 : off + 16] = self.names.ip(old_src)
            buf[off + 16 : off + 20] = self.names.ip(old_dst)
            _ip_checksum(buf, off, ihl)
            changed = buf[off + 12 : off + 20] != old_src + old_dst
        if frag & 0x1FFF:
            return changed  # a later fragment: no transport header here
        l4 = off + ihl
        end = min(off + total, len(buf)) if total >= ihl else len(buf)
        complete = off + total <= len(buf) and not frag & 0x2000
        pseudo_old = old_src + old_dst
        pseudo_new = bytes(buf[off + 12 : off + 20])
        l4_len = total - ihl
        return (
            self._transport(
                index,
                buf,
                proto,
                l4,
                end,
                complete,
                pseudo_old,
                pseudo_new,
                l4_len,
                old_src,
                old_dst,
            )
            or changed
        )

    def _ipv6(self, index, buf: bytearray, off: int) -> bool | None:
        if len(buf) < off + 40 or buf[off] >> 4 != 6:
            return None
        plen = struct.unpack_from("!H", buf, off + 4)[0]
        old_src, old_dst = bytes(buf[off + 8 : off + 24]), bytes(buf[off + 24 : off + 40])
        changed = False
        if not self.opts.keep_ips:
            buf[off + 8 : off + 24] = self.names.ip(old_src)
            buf[off + 24 : off + 40] = self.names.ip(old_dst)
            changed = buf[off + 8 : off + 40] != old_src + old_dst
        nh = buf[off + 6]
        p = off + 40
        end = min(off + 40 + plen, len(buf))
        complete = off + 40 + plen <= len(buf)
        while nh in (0, 43, 44, 60) and p + 8 <= end:
            if nh == 44:
                if struct.unpack_from("!H", buf, p + 2)[0] & 0xFFF9:
                    return changed  # a later fragment
                complete = False  # the transport checksum covers other fragments too
                nh, p = buf[p], p + 8
            else:
                nh, p = buf[p], p + 8 + buf[p + 1] * 8
        l4_len = off + 40 + plen - p
        return (
            self._transport(
                index,
                buf,
                nh,
                p,
                end,
                complete,
                old_src + old_dst,
                bytes(buf[off + 8 : off + 40]),
                l4_len,
                old_src,
                old_dst,
            )
            or changed
        )

    # -- transport layer
    def _transport(
        self, index, buf, proto, l4, end, complete, pseudo_old, pseudo_new, l4_len, src, dst
    ) -> bool:
        if proto == 6 and l4 + 20 <= end:
            sport, dport, seq = struct.unpack_from("!HHI", buf, l4)
            doff = (buf[l4 + 12] >> 4) * 4
            pstart = l4 + doff
            old_payload = bytes(buf[pstart:end])
            patched = self._patch(index, buf, (src, sport, dst, dport), seq, pstart, end)
            csum_at = l4 + 16
        elif proto == 17 and l4 + 8 <= end:
            patched = False
            old_payload = b""
            pstart = l4 + 8
            csum_at = l4 + 6
            if struct.unpack_from("!H", buf, csum_at)[0] == 0 and len(pseudo_old) == 8:
                return False  # IPv4 UDP without checksum
        elif proto == 58 and l4 + 4 <= end:
            patched = False
            old_payload = b""
            pstart = l4 + 4
            csum_at = l4 + 2
        else:
            return False
        if not patched and pseudo_old == pseudo_new:
            return False
        if complete and l4_len >= 0 and l4 + l4_len <= len(buf):
            buf[csum_at : csum_at + 2] = b"\x00\x00"
            s = _csum_add(pseudo_new, 0, len(pseudo_new))
            s += l4_len + proto
            s = _csum_add(buf, l4, l4 + l4_len, s)
            value = ~_fold(s) & 0xFFFF
            if proto == 17 and value == 0:
                value = 0xFFFF
            struct.pack_into("!H", buf, csum_at, value)
        else:
            old = struct.unpack_from("!H", buf, csum_at)[0]
            new = _incremental(old, pseudo_old, pseudo_new)
            if patched and (pstart - l4) % 2 == 0:
                new = _incremental(new, old_payload, bytes(buf[pstart:end]))
            struct.pack_into("!H", buf, csum_at, new)
        return True

    def _patch(self, index, buf, key, seq, pstart, end) -> bool:
        inst = self.instances.get(key)
        if not inst or pstart >= end:
            return False
        d = None
        for cand in inst:
            if cand.first_frame <= index:
                d = cand
            else:
                break
        if d is None or d.base_seq is None or not d.edits:
            return False
        off = (seq - d.base_seq) & _M32
        if off >= 1 << 31:
            return False
        hi = off + (end - pstart)
        changed = False
        i = max(0, bisect_right(d.starts, off) - 1)
        while i < len(d.edits):
            e_off, old, new = d.edits[i]
            if e_off >= hi:
                break
            lo_ = max(off, e_off)
            hi_ = min(hi, e_off + len(new))
            if lo_ < hi_:
                at = pstart + lo_ - off
                if buf[at : at + hi_ - lo_] != old[lo_ - e_off : hi_ - e_off]:
                    # not the bytes the edit was made for (a retransmission
                    # with other content): never written, counted, fails closed
                    self.mismatches += 1
                else:
                    buf[at : at + hi_ - lo_] = new[lo_ - e_off : hi_ - e_off]
                    d.covered[i] |= _bits(lo_ - e_off, hi_ - e_off)
                    changed = True
            i += 1
        return changed


def _bits(lo: int, hi: int) -> int:
    """Bit mask of byte positions lo..hi-1."""
    return ((1 << (hi - lo)) - 1) << lo
