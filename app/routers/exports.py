import uuid

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from app.routers.deps import Ctx
from app.services.rights import export

router = APIRouter(tags=["data rights"])


@router.get("/children/{child_id}/export", response_class=StreamingResponse,
            summary="Subject access export: a zip a family can open (team manager)",
            responses={200: {"content": {"application/zip": {}},
                             "description": "index.html (accessible, no script), "
                             "entries.json, consents.json, plan-versions.json, symbols.obl "
                             "(Open Board Logging), media/ (the photos and recordings of the "
                             "included entries). Family-facing: entries not covered by a "
                             "share_family consent now are left out; entries with other "
                             "people in them are listed but withheld until cleared."}})
def export_child(request: Request, child_id: uuid.UUID, ctx: Ctx) -> StreamingResponse:
    bundle = export.build(ctx, child_id, request.app.state.media_store)
    return StreamingResponse(
        export.stream_zip(bundle.members), media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{bundle.filename}"'})
