"""OpenAPI description of Bearer token auth (drf-spectacular would otherwise warn and omit it)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Describes :class:`api.authentication.BearerTokenAuthentication` as an HTTP bearer scheme."""

    target_class = "api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):  # noqa: ANN001 - signature fixed by drf-spectacular
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token: create one on the API tokens page or with "
                           "`manage.py create_api_token <username>`.",
        }
