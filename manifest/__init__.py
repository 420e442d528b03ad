"""Teams app manifest template, icons and the package builder (`python -m manifest build`, manifest/build.py)."""
