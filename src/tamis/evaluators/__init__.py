"""Built-in proxy-model evaluators for `tamis ablate`: `tiny-lm` (torch) and `command` (any external trainer)."""
