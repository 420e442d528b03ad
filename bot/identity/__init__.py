"""Identity: Teams SSO, on-behalf-of, encrypted token caches and the sign-in page (the only msal importer)."""
