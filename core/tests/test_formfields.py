"""core.formfields.choice_field: a form's choices filled in at run time, on the field that validates them."""

import pytest
from django import forms

from core.formfields import choice_field


class _Form(forms.Form):
    role = forms.ChoiceField()
    note = forms.CharField()


def test_choices_set_through_choice_field_are_the_ones_the_form_accepts():
    form = _Form(data={"role": "officer", "note": "x"})
    choice_field(form, "role").choices = [("officer", "Loan officer")]
    assert form.is_valid()
    refused = _Form(data={"role": "owner", "note": "x"})
    choice_field(refused, "role").choices = [("officer", "Loan officer")]
    assert not refused.is_valid() and "role" in refused.errors


def test_a_field_without_choices_is_named_not_filled():
    with pytest.raises(TypeError, match="_Form.note is not a choice field"):
        choice_field(_Form(), "note")
