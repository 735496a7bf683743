"""A minimal NFQUEUE client over a raw netlink socket (standard library only).

Just what the delayer needs: bind a queue, copy the first 20 bytes of each packet (the
IPv4 header, enough for source and destination), keep GSO super-packets whole
(``NFQA_CFG_F_GSO``; without it the kernel segments them and throughput drops ~10x), and
send many verdicts in one datagram. Message layouts follow
``linux/netfilter/nfnetlink_queue.h``. The socket belongs to the network namespace the
process was in when it was opened.

    queue = NfQueue(0)                 # bound, ready for packets
    for packet_id, src, dst in queue.receive():
        queue.verdicts([(packet_id, ACCEPT)])
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Iterator, Sequence

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NFQA_PACKET_HDR, NFQA_VERDICT_HDR, NFQA_PAYLOAD = 1, 2, 10
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN, NFQA_CFG_MASK, NFQA_CFG_FLAGS = 1, 2, 3, 4, 5
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_PACKET = 2
NFQA_CFG_F_GSO = 1 << 2
DROP, ACCEPT = 0, 1
COPY_RANGE = 20
_HEADER = struct.Struct("=IHHII")  # struct nlmsghdr
_ATTR = struct.Struct("=HH")  # struct nlattr
_VERDICTS_PER_SEND = 256


class NfQueue:
    """One bound NFQUEUE queue. ``fileno()`` is pollable; ``receive()`` never blocks."""

    def __init__(self, queue_num: int, *, max_len: int = 65536) -> None:
        self.queue_num = queue_num
        self.overruns = 0
        """Times the kernel could not hand packets over (ENOBUFS): those packets were lost."""
        self._seq = 0
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE (root)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind((0, 0))
        self._config(_attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, socket.AF_INET)))
        self._config(
            _attr(NFQA_CFG_PARAMS, struct.pack("!IB", COPY_RANGE, NFQNL_COPY_PACKET))
            + _attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", max_len))
            + _attr(NFQA_CFG_MASK, struct.pack("!I", NFQA_CFG_F_GSO))
            + _attr(NFQA_CFG_FLAGS, struct.pack("!I", NFQA_CFG_F_GSO))
        )
        self.sock.setblocking(False)

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def receive(self) -> Iterator[tuple[int, bytes, bytes]]:
        """Every queued packet available now, as (packet_id, source, destination) 4-byte IPs."""
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # the kernel dropped messages; keep going
                    self.overruns += 1
                    continue
                raise
            yield from parse_packets(data)

    def verdicts(self, decided: Sequence[tuple[int, int]]) -> None:
        """Send (packet_id, ACCEPT|DROP) verdicts, many per datagram."""
        for start in range(0, len(decided), _VERDICTS_PER_SEND):
            chunk = decided[start : start + _VERDICTS_PER_SEND]
            data = b"".join(
                self._message(
                    NFQNL_MSG_VERDICT,
                    NLM_F_REQUEST,
                    _attr(NFQA_VERDICT_HDR, struct.pack("!II", verdict, packet_id)),
                )
                for packet_id, verdict in chunk
            )
            self.sock.sendto(data, (0, 0))

    def _config(self, attrs: bytes) -> None:
        """Send one config message and wait for the kernel's acknowledgement."""
        self.sock.sendto(self._message(NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, attrs), (0, 0))
        reply = self.sock.recv(65536)
        _, msg_type, _, _, _ = _HEADER.unpack_from(reply)
        if msg_type == NLMSG_ERROR:
            (code,) = struct.unpack_from("=i", reply, _HEADER.size)
            if code:
                raise OSError(
                    -code, f"NFQUEUE config of queue {self.queue_num}: {errno.errorcode.get(-code)}"
                )

    def _message(self, msg_type: int, flags: int, attrs: bytes) -> bytes:
        self._seq += 1
        # struct nfgenmsg: family, version, queue number (big endian)
        body = struct.pack("=BB", socket.AF_UNSPEC, 0) + struct.pack("!H", self.queue_num) + attrs
        kind = (NFNL_SUBSYS_QUEUE << 8) | msg_type
        return _HEADER.pack(_HEADER.size + len(body), kind, flags, self._seq, 0) + body


def parse_packets(data: bytes) -> Iterator[tuple[int, bytes, bytes]]:
    """Decode the packet messages of one netlink datagram into (id, src, dst)."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, msg_type, _, _, _ = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size:
            return
        if msg_type == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            packet_id, payload = None, b""
            for attr_type, value in _attrs(data, offset + _HEADER.size + 4, offset + length):
                if attr_type == NFQA_PACKET_HDR:
                    (packet_id,) = struct.unpack_from("!I", value)
                elif attr_type == NFQA_PAYLOAD:
                    payload = value
            if packet_id is not None:
                yield packet_id, payload[12:16], payload[16:20]
        offset += (length + 3) & ~3


def _attrs(data: bytes, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    while start + _ATTR.size <= end:
        length, attr_type = _ATTR.unpack_from(data, start)
        if length < _ATTR.size:
            return
        yield attr_type & 0x3FFF, data[start + _ATTR.size : start + length]
        start += (length + 3) & ~3


def _attr(attr_type: int, value: bytes) -> bytes:
    length = _ATTR.size + len(value)
    return _ATTR.pack(length, attr_type) + value + b"\0" * (-length % 4)
