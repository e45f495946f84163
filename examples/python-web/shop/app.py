from flask import Flask, jsonify, render_template

from shop.catalog import ITEMS


def create_app() -> Flask:
    app = Flask(__name__, template_folder="/app/templates")

    @app.get("/")
    def index():
        return render_template("index.html", items=ITEMS)

    @app.get("/health")
    def health():
        return jsonify(status="ok", items=len(ITEMS))

    return app
