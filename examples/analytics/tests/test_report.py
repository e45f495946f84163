from pipeline.report import AWARDS, counts, render


def test_counts():
    assert counts(AWARDS)["NASA"] == 2


def test_render_has_header():
    assert "agency" in render(AWARDS)
