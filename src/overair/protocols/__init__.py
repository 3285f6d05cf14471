"""Device protocol adapters: parse a wire format, ask the same selection, encode the answer."""
