"""Identity primitives: password policy and hashing, access tokens, role permissions."""
