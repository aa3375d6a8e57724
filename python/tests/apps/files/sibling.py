WORD = b"with sibling"
