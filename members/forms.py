"""Forms of the members page."""

from __future__ import annotations

from django import forms

from tenants.models import Role


class InviteForm(forms.Form):
    email = forms.EmailField(max_length=150)  # becomes the username of someone new
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
