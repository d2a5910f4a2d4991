"""`Idempotency-Key` on POSTs that create something (draft-ietf-httpapi-idempotency-key-header).

A route takes part by asking for `idempotency` and handing it its answer:

    async def create(self, uow: ..., idempotency: NamedDependency[Idempotency], data: ...):
        course = await courses.create(uow, data)
        return await idempotency.keep(Response(course, status_code=201))

Resolving the dependency claims the caller's key, or ends the request before the handler
runs: 400 for a malformed key, the stored answer with `Idempotent-Replayed: true`, 409 while
the first request runs, 422 when the key was used for another request. `keep` stores a 2xx
answer in the request's unit of work, so it commits with the request's write; any other
answer, an exception or a rollback releases the key, and a retry runs again. Without the
header a route behaves as before. Keys are scoped to the user, or to the client address on
anonymous routes.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.enums import MediaType
from litestar.serialization import get_serializer
from litestar.utils.helpers import get_enum_string_value

from server.db.unit import UnitOfWork
from server.errors import BadRequest
from server.http.access import IDENTITY_KEY, Identity
from server.http.client import client_address
from server.services.idempotency import Claim, IdempotencyKeys, KeyedRequest, StoredResponse

T = TypeVar("T")
AnyRequest = Request[Any, Any, Any]

HEADER = "idempotency-key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255


class Replayed(Exception):
    """Ends a request whose key already has an answer; mapped to that answer."""

    def __init__(self, stored: StoredResponse) -> None:
        super().__init__("replayed")
        self.stored = stored


def replay_response(request: AnyRequest, exc: Replayed) -> Response[bytes]:
    stored = exc.stored
    return Response(
        stored.body,
        status_code=stored.status,
        media_type=stored.media_type,
        headers={**stored.headers, REPLAYED_HEADER: "true"},
        cookies=[Cookie(**cast(dict[str, Any], fields)) for fields in stored.cookies],
    )


def parse_key(values: list[str]) -> str | None:
    """The key of the header (a structured-field string, quotes optional), None without one."""
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest("Send one Idempotency-Key")
    key = values[0].strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not 0 < len(key) <= MAX_KEY_LENGTH:
        raise BadRequest(f"An Idempotency-Key has 1 to {MAX_KEY_LENGTH} characters")
    if not all(" " <= char <= "~" for char in key):
        raise BadRequest("An Idempotency-Key holds printable ASCII characters only")
    return key


class Idempotency:
    """The request's key, if it sent one; `keep` stores the answer with the request's write."""

    __slots__ = ("_claim", "_kept", "_keys", "_request", "_uow")

    def __init__(
        self,
        request: AnyRequest,
        uow: UnitOfWork,
        keys: IdempotencyKeys,
        claim: Claim | None,
    ) -> None:
        self._request = request
        self._uow = uow
        self._keys = keys
        self._claim = claim
        self._kept = False
        if claim is not None:
            uow.after_rollback(self._release)
            uow.after_commit(self._release_unless_kept)

    async def keep(self, answer: Response[T] | T) -> Response[T]:
        """The answer to send; a 2xx one is stored under the key in the request's unit."""
        handler = self._request.route_handler
        response = (
            answer
            if isinstance(answer, Response)
            else Response(answer, status_code=handler.status_code)
        )
        status = response.status_code or handler.status_code
        if self._claim is None or not 200 <= status < 300:
            return response
        media_type = get_enum_string_value(
            response.media_type or handler.media_type or MediaType.JSON
        )
        encoders = {**handler.resolve_type_encoders(), **response.response_type_encoders}
        body = response.render(response.content, media_type, get_serializer(encoders))
        headers = {name: str(value) for name, value in response.headers.items()}
        stored = StoredResponse(
            status=status,
            media_type=media_type,
            headers=headers,
            cookies=[cookie.dict for cookie in response.cookies],
            body=body,
        )
        await self._keys.complete(self._uow, self._claim, stored)
        self._kept = True
        return cast(
            Response[T],
            Response(
                body,
                status_code=status,
                media_type=media_type,
                headers=headers,
                cookies=response.cookies,
                background=response.background,
            ),
        )

    async def _release(self) -> None:
        assert self._claim is not None
        await self._keys.release(self._claim)

    async def _release_unless_kept(self) -> None:
        if not self._kept:
            await self._release()


def _scope_of(request: AnyRequest, trusted_proxies: tuple[str, ...]) -> str:
    identity = cast(dict[str, Any], request.scope).get(IDENTITY_KEY)
    if isinstance(identity, Identity):
        return "user:" + identity.user_id
    return "address:" + client_address(request.scope, trusted_proxies)


async def claim_for(
    request: AnyRequest, uow: UnitOfWork, keys: IdempotencyKeys, trusted_proxies: tuple[str, ...]
) -> Idempotency:
    """The `idempotency` dependency: claims the request's key; see the module docstring."""
    key = parse_key(request.headers.getall(HEADER, []))
    if key is None:
        return Idempotency(request, uow, keys, None)
    target = request.scope["path"]
    if query := request.scope["query_string"]:
        target += "?" + query.decode("latin-1")
    keyed = KeyedRequest.of(
        _scope_of(request, trusted_proxies), key, request.method, target, await request.body()
    )
    outcome = await keys.claim(keyed)
    if isinstance(outcome, StoredResponse):
        raise Replayed(outcome)
    return Idempotency(request, uow, keys, outcome)
