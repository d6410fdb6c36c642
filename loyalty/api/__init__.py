"""The JSON API for other systems: ``openapi`` describes and checks, ``keys`` authenticates,
``views`` answers."""

#: Where the API lives; every path under it answers JSON, errors included.
PREFIX = "/api/v1"
