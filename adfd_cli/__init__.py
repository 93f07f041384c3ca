"""adfd command line: parse, validate, call adfd_core, print."""
