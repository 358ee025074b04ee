#!/usr/bin/env python3
"""A test SMTP server that keeps what it receives: aiosmtpd on 127.0.0.1.

    smtp_sink.py DIR [PORT]

PORT 0 (the default) picks a free port. Once listening it prints `PORT=<n>` on stdout. Each
message is written as DIR/<n>.eml (the raw message as received, DATA) with its envelope in
DIR/<n>.json (`mail_from`, `rcpt_tos`, and `message`: the message as Python's email package
reads it, with `subject`, `from`, `to`, `message_id`, `text` and `html` decoded, or `error`),
n counting from 1; each file is written under a temporary name and renamed, so a reader never
sees half a file, and the .json is renamed before the .eml, so an .eml always has its envelope.
Runs until killed (SIGTERM, SIGINT).

SMTP_SINK_SLOW_EVERY=N and SMTP_SINK_SLOW_SECS=S (environment): every Nth message is accepted
only after S seconds (a slow relay, for tests of leases that run out mid-send).

Debian: python3-aiosmtpd (scripts/services.sh install-deps).
"""

import asyncio
import email
import email.policy
import json
import os
import signal
import socket
import sys

from aiosmtpd.smtp import SMTP


def parse(content):
    """What a mail client would show: headers and the decoded text and HTML parts."""
    try:
        msg = email.message_from_bytes(content, policy=email.policy.default)
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        return {
            "subject": str(msg["subject"] or ""),
            "from": str(msg["from"] or ""),
            "to": str(msg["to"] or ""),
            "message_id": str(msg["message-id"] or ""),
            "content_type": msg.get_content_type(),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
        }
    except Exception as e:  # the test shows what went wrong
        return {"error": repr(e)}


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0
        self.slow_every = int(os.environ.get("SMTP_SINK_SLOW_EVERY", "0"))
        self.slow_secs = float(os.environ.get("SMTP_SINK_SLOW_SECS", "0"))

    def _write(self, name, data):
        path = os.path.join(self.directory, name)
        tmp = os.path.join(self.directory, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        n = self.count
        if self.slow_every > 0 and n % self.slow_every == 0:
            await asyncio.sleep(self.slow_secs)
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        envelope_json = json.dumps(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "message": parse(content),
            }
        ).encode()
        self._write(f"{n}.json", envelope_json)
        self._write(f"{n}.eml", content)
        return "250 OK"


async def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    directory = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) == 3 else 0
    os.makedirs(directory, exist_ok=True)
    sink = Sink(directory)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    sock.setblocking(False)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(sink, hostname="smtp-sink.test", decode_data=False),
        sock=sock,
    )
    print(f"PORT={sock.getsockname()[1]}", flush=True)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
