from shop.app import create_app


def test_health():
    client = create_app().test_client()
    assert client.get("/health").json["status"] == "ok"
