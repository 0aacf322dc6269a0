"""The `hwnas run` pipeline: cached stages from supernet training to verified export."""
