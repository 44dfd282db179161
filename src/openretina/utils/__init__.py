"""Small, domain-free helpers. Reference import paths for domain code re-export from where it lives."""
