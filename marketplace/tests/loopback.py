"""What the tests' loopback servers share (the webhook receiver, the SMTP server): a socketserver on
127.0.0.1, on a free port, served from a daemon thread while the `with` block runs."""

import socketserver
import threading


class LoopbackServer:
    server: socketserver.BaseServer
    port: int

    def _listen(self, server_class: type[socketserver.BaseServer], handler: type) -> None:
        self.server = server_class(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
