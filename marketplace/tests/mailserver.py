"""A tiny SMTP server on 127.0.0.1 for topology tests: accepts every message, as slowly as it is told to."""

import socketserver
import time

from .loopback import LoopbackServer


class MailServer(LoopbackServer):
    def __init__(self, delay: float = 0.0):
        self.messages: list[bytes] = []  # each message's data, as the client sent it
        self.delay = delay  # seconds before accepting each message: a slow or distant mail server
        mail_server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                self.wfile.write(b"220 localhost test SMTP\r\n")
                while line := self.rfile.readline():
                    command = line[:4].upper()
                    if command in (b"EHLO", b"HELO"):
                        self.wfile.write(b"250 localhost\r\n")  # no extensions: plain SMTP, no STARTTLS
                    elif command == b"DATA":
                        self.wfile.write(b"354 end with <CRLF>.<CRLF>\r\n")
                        data = b""
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            data += chunk
                        time.sleep(mail_server.delay)
                        mail_server.messages.append(data)
                        self.wfile.write(b"250 queued\r\n")
                    elif command == b"QUIT":
                        self.wfile.write(b"221 bye\r\n")
                        return
                    else:  # MAIL FROM, RCPT TO, RSET, NOOP
                        self.wfile.write(b"250 ok\r\n")

        self._listen(socketserver.ThreadingTCPServer, Handler)
        self.url = f"smtp://127.0.0.1:{self.port}"  # EMAIL_URL
