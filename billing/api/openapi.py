"""OpenAPI descriptions of the two API-key authentications (drf-spectacular extensions)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension


class BearerKeyScheme(OpenApiAuthenticationExtension):
    target_class = "billing.api.authentication.BearerKeyAuthentication"
    name = "bearerKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "bk_<prefix>_<secret>",
            "description": "An API key from `manage.py create_api_key` or the admin: "
            "`Authorization: Bearer <key>`.",
        }


class ThreeScaleKeyScheme(OpenApiAuthenticationExtension):
    """3scale's credentials: `access_token` as a parameter, or HTTP Basic."""

    target_class = "billing.api.authentication.ThreeScaleKeyAuthentication"
    name = ["accessToken", "basicKey"]

    def get_security_requirement(self, auto_schema):
        # Either scheme alone is enough (one requirement object each: OR).
        return [{name: []} for name in self.name]

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "apiKey",
                "in": "query",
                "name": "access_token",
                "description": "The API key as the `access_token` parameter "
                "(`provider_key` is accepted too).",
            },
            {
                "type": "http",
                "scheme": "basic",
                "description": "The API key as the Basic user name or password.",
            },
        ]


class ThreeScaleRequestKeyScheme(ThreeScaleKeyScheme):
    """The 3scale views' authentication, a subclass that also reads a JSON body."""

    target_class = "billing.api.threescale.base.ThreeScaleRequestAuthentication"


class StrictSerializerScheme(OpenApiSerializerExtension):
    """A StrictSerializer refuses keys it does not know: `additionalProperties: false`.
    The keys it tolerates (and ignores) are listed, so sending them stays valid."""

    target_class = "billing.api.fields.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        properties = schema.setdefault("properties", {})
        for name in sorted(self.target.tolerated_fields):
            properties.setdefault(name, {"description": "Accepted and ignored."})
        schema["additionalProperties"] = False
        return schema
