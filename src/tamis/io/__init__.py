"""Reading and writing files on any fsspec filesystem, with atomic commits."""
