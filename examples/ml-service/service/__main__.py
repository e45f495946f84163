"""Serves the model's metadata and a toy embedding."""
import json
import os
import pathlib
from http.server import BaseHTTPRequestHandler, HTTPServer

MODELS = pathlib.Path(os.environ["MODEL_DIR"])


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        models = sorted(p.name for p in MODELS.iterdir())
        data = json.dumps({"status": "ok", "models": models}).encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(data)


HTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
