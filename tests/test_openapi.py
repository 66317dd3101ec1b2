"""The OpenAPI document a tablet developer reads: a summary for every operation and an
example for every request body."""


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].split("/")[-1]]
    return schema


def test_every_operation_has_a_summary_and_an_example_body(client) -> None:  # noqa: ANN001
    spec = client.get("/openapi.json").json()
    missing = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if not op.get("summary"):
                missing.append(f"{method} {path}: summary")
            body = op.get("requestBody")
            if body:
                for media in body["content"].values():
                    schema = _resolve(spec, media.get("schema", {}))
                    if not (media.get("example") or media.get("examples") or
                            schema.get("examples") or schema.get("example")):
                        missing.append(f"{method} {path}: example body")
    assert missing == []


def test_problem_documents_are_described(client) -> None:  # noqa: ANN001
    r = client.get("/api/v1/children")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.headers["x-request-id"]
    assert r.headers["x-content-type-options"] == "nosniff"


def test_request_id_is_echoed_when_safe(client) -> None:  # noqa: ANN001
    assert client.get("/healthz", headers={"X-Request-ID": "tablet-42.7"}) \
        .headers["x-request-id"] == "tablet-42.7"
    odd = client.get("/healthz", headers={"X-Request-ID": "<script>"}).headers["x-request-id"]
    assert odd != "<script>" and len(odd) == 32
    assert client.get("/healthz").json() == {"status": "ok"}
