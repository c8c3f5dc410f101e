"""Configuration: config scopes, dotted paths, config files and resolution."""
