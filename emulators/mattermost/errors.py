"""AppError: the error shape of every Mattermost REST failure and WebSocket FAIL response."""

from __future__ import annotations

from typing import Any

# Translated messages of the ids we emit, from the server's i18n/en.json.
MESSAGES: dict[str, str] = {
    "api.context.session_expired.app_error": "Invalid or expired session, please login again.",
    "api.context.token_provided.app_error": (
        "Session is not OAuth but token was provided in the query string."
    ),
    "api.context.permissions.app_error": "You do not have the appropriate permissions.",
    "api.context.invalid_url_param.app_error": (
        "Invalid or missing {name} parameter in request URL."
    ),
    "api.context.invalid_param.app_error": "Invalid {name} parameter.",
    "api.context.invalid_body_param.app_error": "Invalid or missing {name} in request body.",
    "api.context.404.app_error": "Sorry, we could not find the page.",
    "api.context.405.app_error": "Method not allowed.",
    "api.context.request_body_too_large.app_error": (
        "Your request is too large to process. Please reduce the size and try again."
    ),
    "api.context.500.app_error": "An internal error occurred.",
    "app.post.get.app_error": "Unable to get post.",
    "app.file_info.get.app_error": "Unable to get the file info.",
    "api.file.upload_file.too_large_detailed.app_error": (
        "Unable to upload file. File is too large."
    ),
    "api.file.upload_file.incorrect_number_of_files.app_error": (
        "Unable to upload files. Incorrect number of files specified."
    ),
    "model.post.is_valid.file_ids.app_error": "Invalid file ids.",
    "app.post.save.app_error": "Unable to save the post.",
    "app.user.missing_account.const": "Unable to find the user.",
    "app.channel.get.existing.app_error": "Unable to find the existing channel.",
    "model.post.is_valid.message_length.app_error": (
        "Post Message property is longer than the maximum permitted length."
    ),
    "model.post.is_valid.root_id.app_error": "Invalid root ID.",
    "api.post.create_post.root_id.app_error": "Invalid RootId parameter.",
    "api.post.create_post.channel_root_id.app_error": "Invalid ChannelId for RootId parameter.",
    "api.post.deduplicate_create_post.pending": (
        "Rejected post since another client is making the same request."
    ),
    "api.post.deduplicate_create_post.failed_to_get": (
        "Failed to fetch original post after deduplicating a client repeating the same request."
    ),
    "api.reaction.save_reaction.user_id.app_error": "You cannot save reaction for the other user.",
    "api.reaction.save_reaction.invalid.app_error": "Reaction is not valid.",
    "api.web_socket.connect.upgrade.app_error": "Failed to upgrade WebSocket connection.",
    "api.web_socket_router.bad_seq.app_error": "Invalid sequence for WebSocket message.",
    "api.web_socket_router.no_action.app_error": "No websocket action.",
    "api.web_socket_router.bad_action.app_error": "Unknown WebSocket action.",
    "api.websocket_handler.invalid_param.app_error": "Invalid {name} parameter.",
}


class AppError(Exception):
    """A Mattermost model.AppError; `status_code` is the HTTP status it is served with."""

    def __init__(self, error_id: str, status_code: int, *, name: str = "") -> None:
        self.error_id = error_id
        self.status_code = status_code
        self.message = MESSAGES.get(error_id, error_id).format(name=name)
        super().__init__(f"{status_code} {error_id}: {self.message}")

    def to_json(self, request_id: str | None) -> dict[str, Any]:
        """Body of an HTTP error; `request_id` is omitted (omitempty) on WebSocket replies."""
        body: dict[str, Any] = {
            "id": self.error_id,
            "message": self.message,
            # Always present, emptied because EnableDeveloper is off on a normal server.
            "detailed_error": "",
        }
        if request_id:
            body["request_id"] = request_id
        body["status_code"] = self.status_code
        return body


def forbidden() -> AppError:
    return AppError("api.context.permissions.app_error", 403)


def bad_url_param(name: str) -> AppError:
    return AppError("api.context.invalid_url_param.app_error", 400, name=name)


def bad_body_param(name: str) -> AppError:
    return AppError("api.context.invalid_body_param.app_error", 400, name=name)


def post_not_found() -> AppError:
    return AppError("app.post.get.app_error", 404)
