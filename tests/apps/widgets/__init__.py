"""An extension-style blueprint that ships its own static folder."""

from flask import Blueprint

widgets = Blueprint(
    "widgets",
    __name__,
    static_folder="static",
    static_url_path="/widgets-static",
)


@widgets.route("/widgets/")
def gallery() -> str:
    return "Widget gallery"
