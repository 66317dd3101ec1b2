import uuid

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from app.routers.deps import Ctx
from app.services.rights import export

router = APIRouter(tags=["data rights"])


@router.get("/children/{child_id}/export", response_class=StreamingResponse,
            summary="Subject access export: a zip a family can open (team manager)",
            responses={200: {"content": {"application/zip": {}},
                             "description": "index.html (written to the child, no script: "
                             "the pictures they chose, their photos, their recordings), "
                             "entries.json, consents.json, plan-versions.json, symbols.obl "
                             "(Open Board Logging), media/ and pictures/ (named in words). "
                             "Family-facing: entries not covered by a share_family consent "
                             "now, and entries that raised an alert, are left out; entries "
                             "with other people in them are listed but withheld until "
                             "cleared. `X-Left-Out` counts what was left out; the `Link` "
                             "(rel=describedby) names the list of it and why.",
                             "headers": {"X-Left-Out": {"schema": {"type": "integer"}},
                                         "Link": {"schema": {"type": "string"}}}}})
def export_child(request: Request, child_id: uuid.UUID, ctx: Ctx) -> StreamingResponse:
    bundle = export.build(ctx, child_id, request.app.state.media_store)
    return StreamingResponse(
        export.stream_zip(bundle.members), media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{bundle.filename}"',
                 "X-Left-Out": str(bundle.left_out),
                 "Link": f'</api/v1/children/{child_id}/export/left-out>; rel="describedby"'})


@router.get("/children/{child_id}/export/left-out",
            summary="What the family's export leaves out, and why (team manager)")
def export_left_out(child_id: uuid.UUID, ctx: Ctx) -> dict:
    """For the manager who downloads the export, never for the family: every entry not in
    it, with its reason (`safeguarding_alert`, `other_people_not_cleared`,
    `no_share_family_consent`, `retracted`, `withdrawn`, `erased`), and how many are in."""
    return export.left_out(ctx, child_id)
