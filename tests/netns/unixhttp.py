"""HTTP over a unix socket (larchd's and the agents'), for the namespace
tests and the benchmarks."""
import http.client
import socket


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, unix_path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = unix_path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)
