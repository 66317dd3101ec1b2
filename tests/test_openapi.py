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


def test_every_error_is_described_as_the_problem_document(client) -> None:  # noqa: ANN001
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert {"type", "title", "status", "detail"} <= set(schemas["Problem"]["required"])
    wrong = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            codes = {int(c) for c in op["responses"] if c.isdigit()}
            if op.get("security") and not {401, 403} <= codes:
                wrong.append(f"{method} {path}: 401/403 not listed")
            if "requestBody" in op and not {400, 413, 422} <= codes:
                wrong.append(f"{method} {path}: 400/413/422 not listed")
            for code, answer in op["responses"].items():
                content = dict(answer.get("content") or {})
                if path.endswith(".html"):  # a page's problem is also a page
                    content.pop("text/html", None)
                if code.isdigit() and int(code) >= 400 and content != {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}}}:
                    wrong.append(f"{method} {path} {code}: {answer.get('content')}")
    assert wrong == []


def test_the_sync_call_and_tus_describe_what_they_need(client) -> None:  # noqa: ANN001
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    # Both credentials at once: one security requirement naming both.
    assert paths["/api/v1/sync"]["post"]["security"] == [{"staff": [], "device_key": []}]
    assert spec["components"]["securitySchemes"]["device_key"] == {
        "type": "apiKey", "in": "header", "name": "X-Device-Key",
        "description": spec["components"]["securitySchemes"]["device_key"]["description"]}

    def headers(op: dict) -> set[str]:
        return {p["name"] for p in op.get("parameters", []) if p["in"] == "header"}

    create = paths["/api/v1/uploads/"]["post"]
    assert {"Tus-Resumable", "Upload-Length", "Upload-Metadata"} <= headers(create)
    assert "Location" in create["responses"]["201"]["headers"]
    patch = paths["/api/v1/uploads/{upload_id}"]["patch"]
    assert {"Tus-Resumable", "Upload-Offset", "Upload-Checksum"} <= headers(patch)
    assert "application/offset+octet-stream" in patch["requestBody"]["content"]
    assert {"409", "460"} <= set(patch["responses"])
    head = paths["/api/v1/uploads/{upload_id}"]["head"]
    assert {"Upload-Offset", "Upload-Length"} <= set(head["responses"]["200"]["headers"])
    # HEAD on media is described next to GET.
    assert {"get", "head"} <= set(paths["/api/v1/media/{media_id}"])
