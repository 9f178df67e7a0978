"""Invitation links: Django's password-reset token with a salt and a lifetime of their own.

The token hashes the user's password field, so it is void once the invited person sets a
password (one use); it is refused after INVITE_LINK_DAYS, and never works as a reset link.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.utils.crypto import constant_time_compare
from django.utils.http import base36_to_int


class InviteTokenGenerator(PasswordResetTokenGenerator):
    key_salt = "members.tokens.InviteTokenGenerator"

    def check_token(self, user: Any, token: str | None) -> bool:
        # Django's check, but against the invitation's lifetime, not PASSWORD_RESET_TIMEOUT.
        if not (user and token) or token.count("-") != 1:
            return False
        try:
            timestamp = base36_to_int(token.split("-")[0])
        except ValueError:
            return False
        if self._num_seconds(self._now()) - timestamp > settings.INVITE_LINK_DAYS * 86400:
            return False
        return any(
            constant_time_compare(self._make_token_with_timestamp(user, timestamp, secret), token)
            for secret in [self.secret, *self.secret_fallbacks]
        )


invite_tokens = InviteTokenGenerator()
