#!/usr/bin/env python3
"""Run a real SMTP server for the integration tests and store each accepted message as a file.

Every message accepted with 250 is written to the mail directory as two files:
- `<seq>.json`: the envelope, `{"mail_from": str, "rcpt_tos": [str, ...]}`;
- `<seq>.eml`: the message data exactly as received (after SMTP dot-unstuffing).
`<seq>` counts from 000001 in six digits, so the names sort in arrival order. The .json is
renamed into place first and the .eml last, so a reader that finds an .eml also finds its .json.
Files still being written end in `.tmp`.

Recipients matching --reject-rcpt get a permanent 550 reply, and those matching --tempfail-rcpt
a temporary 451 reply. With --tempfail-ratio R, a random fraction R of the messages get a
temporary 451 reply to their data instead of 250 and are not stored. --seed fixes the random
sequence. Once the server accepts connections, it prints `LISTENING <port>` as the
only line on stdout. SIGTERM or SIGINT stops it with exit status 0.

Needs aiosmtpd (scripts/test.sh installs it into var/test-venv).
"""

import argparse
import asyncio
import itertools
import json
import logging
import os
import random
import re
import signal
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger("smtp_server")


class MaildirHandler:
    """aiosmtpd handler that applies the recipient rules and writes accepted messages to disk."""

    def __init__(self, maildir, reject_rcpt, tempfail_rcpt, tempfail_ratio=0.0, seed=None):
        self.maildir = maildir
        self.reject_rcpt = reject_rcpt
        self.tempfail_rcpt = tempfail_rcpt
        self.tempfail_ratio = tempfail_ratio
        self.random = random.Random(seed)
        self.sequence = itertools.count(1)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address, rcpt_options):
        if self.reject_rcpt and self.reject_rcpt.search(address):
            log.info("rejected recipient %s", address)
            return f"550 5.1.1 <{address}>: Recipient address rejected: mailbox unavailable"
        if self.tempfail_rcpt and self.tempfail_rcpt.search(address):
            log.info("temporarily failed recipient %s", address)
            return "451 4.3.0 Temporary failure"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope):
        if self.tempfail_ratio > 0 and self.random.random() < self.tempfail_ratio:
            log.info("temporarily failed a message to %s", envelope.rcpt_tos)
            return "451 4.3.0 Temporary failure"
        name = f"{next(self.sequence):06d}"
        envelope_json = json.dumps({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos})
        write_atomically(self.maildir / f"{name}.json", envelope_json.encode())
        write_atomically(self.maildir / f"{name}.eml", envelope.original_content)
        log.info("stored message %s from %s to %s", name, envelope.mail_from, envelope.rcpt_tos)
        return "250 2.0.0 Message accepted for delivery"


def write_atomically(path: Path, data: bytes):
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port to listen on; 0 picks a free one (default 0)")
    parser.add_argument("--maildir", type=Path, required=True, help="directory for the .eml and .json files")
    parser.add_argument("--reject-rcpt", type=re.compile, metavar="REGEX",
                        help="reply to RCPT with 550 for addresses that match this regular expression")
    parser.add_argument("--tempfail-rcpt", type=re.compile, metavar="REGEX",
                        help="reply to RCPT with 451 for addresses that match this regular expression")
    parser.add_argument("--tempfail-ratio", type=ratio, default=0.0, metavar="R",
                        help="reply with 451 to the data of a random fraction R (0 to 1) of the messages "
                             "and store none of them (default 0)")
    parser.add_argument("--seed", type=int,
                        help="seed of the random choice of --tempfail-ratio, for a repeatable sequence")
    return parser.parse_args()


def ratio(value):
    """Parse a fraction from 0 to 1 for argparse."""
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is None or not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number from 0 to 1")
    return number


async def serve(args):
    args.maildir.mkdir(parents=True, exist_ok=True)
    handler = MaildirHandler(args.maildir, args.reject_rcpt, args.tempfail_rcpt, args.tempfail_ratio, args.seed)
    loop = asyncio.get_running_loop()

    # A fixed hostname avoids the DNS lookup of socket.getfqdn(), aiosmtpd's default.
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="duespark-test-smtp", enable_SMTPUTF8=True, loop=loop),
        host=args.host,
        port=args.port,
    )
    port = server.sockets[0].getsockname()[1]

    stop = asyncio.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)

    print(f"LISTENING {port}", flush=True)
    log.info("listening on %s:%d, storing messages in %s", args.host, port, args.maildir)

    await stop.wait()
    server.close()
    await server.wait_closed()
    log.info("stopped")


def main():
    logging.basicConfig(level=logging.INFO, format="smtp_server: %(message)s")
    # aiosmtpd logs every command at INFO; keep its warnings and errors only.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    asyncio.run(serve(parse_args()))


if __name__ == "__main__":
    main()
