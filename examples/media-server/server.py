"""Media server: computes thumbnail geometry with a native library."""
import ctypes
import json
import os

from waitress import serve

lib = ctypes.CDLL(os.environ["THUMB_LIB"])


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/health":
        body = {"status": "ok", "license": open("/srv/LICENSE.id").read().strip()}
    else:
        w, h, box = (int(x) for x in path.strip("/").split("/")[-3:])
        body = {"width": lib.thumb_width(w, h, box)}
    data = json.dumps(body).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [data]


if __name__ == "__main__":
    serve(app, host="0.0.0.0", port=8080)
