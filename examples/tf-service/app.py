"""tiny-chat: answers /health and /predict, exports Prometheus metrics on 9100."""
import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

from prometheus_client import Counter, start_http_server

try:  # the base image provides TensorFlow; the CI stand-in base does not
    import tensorflow as tf

    TF_VERSION = tf.__version__
except ImportError:
    tf = None
    TF_VERSION = None

REQUESTS = Counter("tiny_chat_requests_total", "requests served")


def predict(text: str) -> str:
    if tf is not None:
        return str(tf.strings.length(text).numpy())
    return str(len(text))


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        REQUESTS.inc()
        if self.path == "/health":
            body = {"status": "ok", "device": os.environ.get("DEVICE"), "tensorflow": TF_VERSION}
        else:
            body = {"length": predict(self.path.rsplit("/", 1)[-1])}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    start_http_server(9100)
    HTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
