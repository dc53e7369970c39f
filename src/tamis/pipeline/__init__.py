"""Pipeline files: parsing, validation against step signatures, fingerprints."""
