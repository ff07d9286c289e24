"""One module per dashboard tab: each lays out its components and wires its own events."""
