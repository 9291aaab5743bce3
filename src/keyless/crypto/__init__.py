"""The only package that imports `cryptography`: keys, thumbprints, secrets, AEAD and the local CA."""
