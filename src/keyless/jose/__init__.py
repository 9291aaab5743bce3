"""The only package that imports the JOSE library (PyJWT), so it can be swapped in one place."""
