from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from sqlmodel import Session

from app.models.staff import TokenOut
from app.routers.deps import get_db
from app.services import staff

router = APIRouter(tags=["staff"])


@router.post("/auth/token", response_model=TokenOut, summary="Sign in and get an access token",
             responses={401: {"description": "Wrong email or password (the same answer "
                                             "whether or not the account exists)."}},
             openapi_extra={"requestBody": {"content": {"application/x-www-form-urlencoded": {
                 "example": {"username": "sam.worker@example.org",
                             "password": "a long passphrase"}}}}})
def sign_in(request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()],
            db: Annotated[Session, Depends(get_db)]) -> dict:
    """OAuth2 password form: `username` is the staff email."""
    return staff.sign_in(db, request.app.state.hashing, request.app.state.tokens,
                         form.username, form.password)
