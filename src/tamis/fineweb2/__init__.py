"""FineWeb-2 (Penedo et al. 2025), the multilingual recipe: per-language configs and language labels."""
