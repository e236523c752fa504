"""Django database backend for SQLCipher (encrypted SQLite) through sqlcipher3."""
