"""The `tamis` command line."""
