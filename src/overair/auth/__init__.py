"""Access keys: stored hashed, checked on every management call."""
