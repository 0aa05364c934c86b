"""The web kit: error shape, body parsing, OpenAPI, health, metrics and the base app."""
