"""Pure tus 1.0.0 logic: parse and validate headers, decide answers. No I/O, no Quart."""
